"""Degenerate replies: a small model that repeats itself ("konnichiwa noor, konnichiwa noor, ...") until the
token limit.

Two measures over the words of a reply (lower-cased, punctuation dropped):

* ``repeated_ngram``: the most often repeated word n-gram and its count. A word 4-gram seen 4 or more times is what
  the benchmark counts as a degenerate reply (``degenerate``); ordinary prose, lists and recipes stay well below.
* ``LoopDetector``: fed the reply as it streams, it says when the tail of the reply is one short stretch repeated
  back to back (a period of 1 to ``MAX_PERIOD`` words, repeated enough times to cover ``MIN_SPAN`` words), or when
  the reply holds a word 4-gram ``CUT_COUNT`` times. That is stricter than ``degenerate``, so a reply is only ever
  cut when it is certainly looping; text without spaces (a run of one syllable) is caught by a character period.
"""

from __future__ import annotations

import re
from collections import Counter

_WORD = re.compile(r"\w+", re.UNICODE)

NGRAM = 4
DEGENERATE_COUNT = 4  # the benchmark's rule: a word 4-gram repeated 4+ times
CUT_COUNT = 6  # the streaming cut's rule: clearly past anything a normal reply repeats
MAX_PERIOD = 24  # words in the repeated stretch
MIN_REPEATS = 3
MIN_SPAN = 18  # words the back-to-back repeats must cover ("very very very" is not yet a loop)
CHAR_WINDOW = 160  # characters checked for a loop with no word boundaries ("hahahaha...")
CHAR_MAX_PERIOD = 40
NOTICE = "The reply was cut: it was repeating itself."


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def repeated_ngram(text: str, n: int = NGRAM) -> tuple[tuple[str, ...], int]:
    """The most frequent word n-gram of ``text`` and how often it occurs (``((), 0)`` for short text)."""
    tokens = words(text)
    if len(tokens) < n:
        return (), 0
    counts = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    gram, count = counts.most_common(1)[0]
    return gram, count


def degenerate(text: str) -> bool:
    """Whether a reply counts as degenerate in the benchmark: a word 4-gram repeated 4 or more times (or an end
    that repeats a few characters with no spaces between them)."""
    return repeated_ngram(text)[1] >= DEGENERATE_COUNT or _periodic_chars(text.rstrip()[-CHAR_WINDOW:])


def repeated_share(text: str, n: int = NGRAM) -> float:
    """The share of the reply's word n-grams that occurred earlier in it (0 for text with no repetition)."""
    tokens = words(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


def _periodic_tail(tokens: list[str]) -> bool:
    """Whether the tail of ``tokens`` is one stretch of 1..MAX_PERIOD words repeated back to back."""
    size = len(tokens)
    for period in range(1, MAX_PERIOD + 1):
        need = max(MIN_REPEATS * period, MIN_SPAN)
        if size < need:
            break
        tail = tokens[size - need :]
        if all(tail[i] == tail[i - period] for i in range(period, need)):
            return True
    return False


def _periodic_chars(text: str) -> bool:
    """A loop with no spaces to split on: the last CHAR_WINDOW characters repeat a short unit with a letter in it."""
    if len(text) < CHAR_WINDOW:
        return False
    tail = text[-CHAR_WINDOW:]
    for period in range(1, CHAR_MAX_PERIOD + 1):
        if all(tail[i] == tail[i - period] for i in range(period, CHAR_WINDOW)):
            return any(c.isalnum() for c in tail[:period])
    return False


class LoopDetector:
    """Fed a streaming reply piece by piece; ``looping`` turns true once the reply is certainly repeating itself."""

    def __init__(self) -> None:
        self.text = ""
        self._tokens: list[str] = []
        self._partial = ""  # the start of a word the next piece may continue
        self._grams: Counter[tuple[str, ...]] = Counter()
        self.looping = False

    def feed(self, piece: str) -> bool:
        """Add the next piece of the reply; True once it loops (and from then on)."""
        if self.looping or not piece:
            return self.looping
        self.text += piece
        found = _WORD.findall(self._partial + piece)
        self._partial = found.pop() if found and _WORD.fullmatch(piece[-1]) else ""
        for word in found:
            self._tokens.append(word.lower())
            if len(self._tokens) >= NGRAM:
                gram = tuple(self._tokens[-NGRAM:])
                self._grams[gram] += 1
                self.looping = self.looping or self._grams[gram] >= CUT_COUNT
        if found and not self.looping:
            self.looping = _periodic_tail(self._tokens)
        if not self.looping:
            self.looping = _periodic_chars(self.text[-CHAR_WINDOW:])
        return self.looping
