"""The stream guard: personal data and secrets masked while a reply streams, before anything reaches the screen.

Text once printed cannot be unprinted, and the partial reply is written to SQLite every half second, so the guard
sits between the model's stream and everything else and holds back a short window:

* with no trigger in sight it releases all but the last three words (and the word being written): a street name
  comes before its house number ("Hauptstraße 5", "Via della Conciliazione 3"), a national id's letters before its
  digits. Nothing is detected then: the detectors never run per token.
* a trigger (a digit, "@", "=", "://", "::", a keyword such as password/secret/token/key, "-----BEGIN", a run of
  16 or more token characters) holds everything from there until a clear break: a newline, or the end of a
  sentence followed by a space (not after "St.", "e.g." or an initial); a PEM block until the line of its
  "-----END ...-----". The detector then runs once on that stretch, with up to 120 released characters before it
  as context, the policy masks it, and it is released. A line that ends in ":" or "=" keeps the next one held.
* "block" releases nothing until the end (a withheld reply must never have been half shown); "off" passes through.

``finish`` checks the whole raw reply once more (that outcome is what is stored) and returns what is left to show.
Normally what was released is a prefix of it, so the rest is its remainder and ``shown`` ends equal to
``outcome.text``. When a finding straddled an earlier release (it began in text released before any trigger), the
part not yet out was masked as it went, and ``finish`` returns the stored text from the raw position already
released (mapped with ``shown_offset``), so nothing printed is repeated; ``diverged`` is then true and the caller
should re-render from ``outcome.text`` where it can (the TUI can, a terminal cannot).

Every step is O(the new text): with no trigger the held text is a few short words (a 16-character run is a
trigger), scanned whole on each piece; a held stretch is searched for its break from where the last search ended; a
trigger with no break for 2,000 characters is released at a word boundary; a private key with no END line after
20,000 characters is shown as one placeholder and the rest of it dropped as it comes. The detector sees each held
stretch once (plus its context), and ``finish`` the whole reply once.

Measured (``python -m bench stream``, 2 busy cores): ~3 µs per piece with no trigger; ~4.5 ms of detections per
500 characters of an everyday reply (one whole-reply check: ~2.4 ms), ~11 ms where nearly every sentence holds
personal data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from assistant.checks import Finding, Policy

if TYPE_CHECKING:
    from assistant.checks.privacy import PolicyOutcome

__all__ = ["StreamGuard", "shown_offset", "withheld_sentence"]

HOLD_WORDS = 3  # complete words always held back, besides the one being written
CONTEXT = 120  # released raw characters the detector sees before a held stretch: every detector looks back less
MAX_HELD = 2_000  # a trigger with no break for this long is released at a word boundary all the same
MAX_PEM = 20_000  # a private key longer than this without its END line is masked whole, and the rest swallowed

# Anything a detector could start a finding from. Deliberately wide: a false trigger costs one detection per
# sentence, a missed one shows a value unmasked. Keywords alone (not only "password:"), since prose such as
# "my password is Hunter!!" is a password without a digit or an "=".
_TRIGGER = re.compile(
    r"\d|@|=|://|::|-----BEGIN|[A-Za-z_+/-]{16}|(?i:pass|pwd|secret|token|key|auth|cred|bearer|contrase)"
)
_BREAK = re.compile(r"\n|[.!?][\"')\]”’]*[ \t]")
_PEM_END = re.compile(r"-----END[^\n]*?-----")
_WHITESPACE = re.compile(r"\s")
# Words after which a full stop ends no sentence (an address goes on after "St.", a list after "e.g.").
_ABBREVIATIONS = frozenset(
    """st str ave av rd blvd ln dr ct pl sq hwy pkwy apt ste no nr mr mrs ms dr prof jr sr vs etc e.g i.e eg ie
    approx dept tel ph fax ext inc ltd co corp cf fig vol""".split()
)


class StreamGuard:
    """Fed the model's text as it streams; gives back what may be shown now, masked per the privacy policy."""

    def __init__(
        self,
        user_inputs: Sequence[str],
        policy: Policy = "redact",
        *,
        detect: Callable[[str], list[Finding]] | None = None,
    ) -> None:
        self.policy: Policy = policy
        self.user_inputs = tuple(user_inputs)
        self._detect = detect
        self.diverged = False  # a finding straddled an earlier release: what was shown is not what is stored
        self.detections = 0  # detector runs while streaming (finish's whole-reply check not counted)
        self._raw: list[str] = []
        self._shown: list[str] = []
        self._raw_cache: str | None = ""
        self._shown_cache: str | None = ""
        self._pending = ""  # raw text not yet released
        self._tail = ""  # the last CONTEXT raw characters released
        self._trigger = -1  # where in _pending the first trigger is (-1: none)
        self._scan = 0  # where in _pending the search for a break goes on from
        self._pem = -1  # where in _pending a "-----BEGIN" is, while its END line is awaited
        self._pem_end = -1  # where in _pending that block's END line ends, once it has come
        self._keep = False  # the last release ended in ":" or "=": what follows is held from its start
        self._swallow = False  # inside an over-long private key, already shown as its placeholder

    # -- what the caller reads --------------------------------------------------------------------------------------

    @property
    def raw(self) -> str:
        """Everything fed so far."""
        if self._raw_cache is None:
            self._raw_cache = "".join(self._raw)
            self._raw[:] = [self._raw_cache]
        return self._raw_cache

    @property
    def shown(self) -> str:
        """Everything released so far (``feed``'s answers and ``finish``'s rest)."""
        if self._shown_cache is None:
            self._shown_cache = "".join(self._shown)
            self._shown[:] = [self._shown_cache]
        return self._shown_cache

    @property
    def held(self) -> int:
        """Raw characters fed but not yet released (the delay a reader sees)."""
        return len(self._pending)

    # -- streaming --------------------------------------------------------------------------------------------------

    def feed(self, text: str) -> str:
        """Raw model text in; the text safe to show now out (often "" or a few words)."""
        if not text:
            return ""
        self._raw.append(text)
        self._raw_cache = None
        if self.policy == "off":
            return self._emit(text)
        if self._swallow:
            return self._swallowing(text)
        if self.policy == "block":
            return ""  # nothing is shown before the whole reply is checked
        before = len(self._pending)
        self._pending += text
        if self._trigger < 0:
            m = _TRIGGER.search(self._pending)  # the untriggered pending is a few short words: scanned whole
            if m is None:
                return self._release_words()
            self._trigger = self._scan = m.start()
            before = m.start()
        return self._held_stretch(before)

    def _held_stretch(self, before: int) -> str:
        """A trigger is held: release up to each clear break after it, detected and masked."""
        out = ""
        while self._trigger >= 0:
            p = self._pending
            if self._pem < 0:
                begin = p.find("-----BEGIN", max(self._trigger, before - 9))
                if begin >= 0:
                    self._pem, self._scan = begin, begin + 10
            if self._pem >= 0:
                cut = self._pem_break(p, before)
                if cut < 0 and len(p) - self._pem > MAX_PEM and "PRIVATE KEY" in p[self._pem : self._pem + 64]:
                    return out + self._start_swallowing()
            else:
                cut = self._break(p, max(self._scan, before - 4))
                if cut < 0 and len(p) - self._trigger > MAX_HELD:
                    # no break in sight: a word boundary will do (one endless token: its last 64 characters)
                    cut = self._words_cut(p) or len(p) - 64
            if cut <= 0:
                return out
            out += self._release(cut)
            before = 0
        return out + self._release_words()

    def _break(self, p: str, start: int) -> int:
        """The end of the first clear break in ``p`` at or after ``start`` (-1: none yet); remembers how far it
        looked, so no character is searched twice."""
        for m in _BREAK.finditer(p, start):
            if m.group(0)[0] == "." and _abbreviation(p, m.start()):
                continue
            return m.end()
        self._scan = max(self._scan, len(p) - 4)  # a "." whose space is still to come
        return -1

    def _pem_break(self, p: str, before: int) -> int:
        """The end of the whitespace after a PEM block's "-----END ...-----" (-1: not yet)."""
        if self._pem_end < 0:
            end = _PEM_END.search(p, max(self._scan, before - 64))
            if end is None:
                self._scan = max(self._scan, len(p) - 64)
                return -1
            self._pem_end = end.end()
        brk = _WHITESPACE.search(p, max(self._pem_end, before))
        return brk.end() if brk is not None else -1

    def _release(self, cut: int) -> str:
        """Detect over the held stretch ``_pending[:cut]`` (with released context before it), mask, release."""
        segment, self._pending = self._pending[:cut], self._pending[cut:]
        context = self._tail
        window = context + segment
        self.detections += 1
        shown = segment
        mine: list[Finding] = []
        at = len(context)
        for f in self._detector()(window):
            if f.end <= at:
                continue  # decided when it was released
            if f.start < at:  # began in text already out: only what is still held can be masked
                self.diverged = True
            start = max(f.start, at)
            mine.append(Finding(f.type, start - at, f.end - at, window[start : f.end], f.secret))
        if mine:
            from assistant.checks.privacy import apply_policy

            shown = apply_policy(segment, mine, self.user_inputs, self.policy).text
        self._tail = window[-CONTEXT:]
        # "password:" at the end of a line: its value may be on the next one, which is held from its start
        self._keep = segment.rstrip()[-1:] in (":", "=") or (self._keep and not segment.strip())
        self._pem = self._pem_end = -1
        m = _TRIGGER.search(self._pending)
        self._trigger = self._scan = 0 if self._keep else m.start() if m is not None else -1
        return self._emit(shown)

    def _release_words(self) -> str:
        """No trigger held: release all but the last HOLD_WORDS words and the word being written, undetected."""
        if self._trigger >= 0:
            return ""
        p = self._pending
        cut = self._words_cut(p)
        if cut <= 0:
            return ""
        released, self._pending = p[:cut], p[cut:]
        self._tail = (self._tail + released)[-CONTEXT:]
        return self._emit(released)

    @staticmethod
    def _words_cut(p: str) -> int:
        """Where the last HOLD_WORDS complete words (and the word being written) begin in ``p``; 0: hold it all."""
        split = HOLD_WORDS if p[-1:].isspace() else HOLD_WORDS + 1
        parts = p.rsplit(None, split)
        return len(parts[0]) if len(parts) > split else 0

    def _start_swallowing(self) -> str:
        """An over-long private key: what came before it is released as usual, the key as one placeholder, and
        everything up to its END line is dropped as it comes."""
        begin = self._pem
        out = self._release(begin) if begin > 0 else ""
        self._pending = self._pending[-64:]  # an END line may have begun to come
        self._trigger = self._scan = self._pem = self._pem_end = -1
        self._keep = False
        self._swallow = True
        return out + self._emit("[secret]")

    def _swallowing(self, text: str) -> str:
        self._pending = (self._pending + text)[-(len(text) + 64) :]  # enough to see the END line arrive
        end = _PEM_END.search(self._pending)
        if end is None:
            self._pending = self._pending[-64:]
            return ""
        self._pending = self._pending[end.end() :]
        self._tail = ""
        self._swallow = False
        m = _TRIGGER.search(self._pending)
        self._trigger = self._scan = m.start() if m is not None else -1
        return self._held_stretch(0) if self._trigger >= 0 else self._release_words()

    def _emit(self, text: str) -> str:
        if text:
            self._shown.append(text)
            self._shown_cache = None
        return text

    def _detector(self) -> Callable[[str], list[Finding]]:
        if self._detect is None:
            from assistant.checks.privacy import find_pii

            self._detect = find_pii
        return self._detect

    # -- the end ----------------------------------------------------------------------------------------------------

    def finish(self) -> tuple[str, PolicyOutcome]:
        """End of stream: what is still to show, and the outcome over the whole raw reply (what is stored)."""
        from assistant.checks.privacy import PolicyOutcome, apply_policy

        raw = self.raw
        released = len(raw) - len(self._pending) if not self._swallow else len(raw)
        self._pending = ""
        if self.policy == "off":
            outcome = PolicyOutcome(raw, [], False, [])
        else:
            outcome = apply_policy(raw, self._detector()(raw), self.user_inputs, self.policy)
        if outcome.blocked:
            outcome = PolicyOutcome(withheld_sentence(outcome), outcome.actions, True, outcome.findings)
        shown = self.shown
        if self.policy == "block" or outcome.text.startswith(shown):
            rest = outcome.text[len(shown) :]
        else:
            self.diverged = True
            rest = outcome.text[shown_offset(outcome, released) :]
        self._emit(rest)
        return rest, outcome


def _abbreviation(p: str, dot: int) -> bool:
    """Whether the full stop at ``dot`` ends an abbreviation or an initial rather than a sentence."""
    word = p[max(0, dot - 12) : dot].rsplit(None, 1)[-1:] or [""]
    w = word[0].lstrip("(\"'“‘").casefold()
    if not w:
        return False
    return w in _ABBREVIATIONS or (len(w) == 1 and w.isalpha()) or w.endswith("str")


def withheld_sentence(outcome: PolicyOutcome) -> str:
    """What a blocked reply shows instead: one sentence naming the kinds of data it held."""
    kinds = sorted({f.type for f, a in zip(outcome.findings, outcome.actions, strict=True) if a == "masked"})
    return (
        "[Withheld: this reply contained personal data you did not type in this conversation "
        f"({', '.join(kinds) or 'personal data'}).]"
    )


def shown_offset(outcome: PolicyOutcome, raw_offset: int) -> int:
    """A raw reply offset moved onto ``outcome.text``: past a masked value by the difference of its placeholder's
    length; a position inside a masked value maps to its placeholder's start. A withheld reply has no offsets
    into it: everything maps to 0."""
    if outcome.blocked:
        return 0
    from assistant.checks.privacy import placeholder

    shift = 0
    for f, action in zip(outcome.findings, outcome.actions, strict=True):
        if action != "masked":
            continue
        if raw_offset < f.end:
            return f.start + shift if raw_offset > f.start else raw_offset + shift
        shift += len(placeholder(f)) - (f.end - f.start)
    return raw_offset + shift
