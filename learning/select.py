"""Select: what the learning job may learn from that is new since its last completed run.

Three kinds of item, each keeping its source ``(kind, id)`` so the adapter it trains can list them
(``storage.learning.add_adapter``) and forgetting can find that adapter again:

- statements: sentences of the user's own messages that say something about themselves (first person, a
  statement: not a question, a request or a pleasantry; see ``assistant.reply_check.stated``);
- facts: what the user asked the assistant to remember (``storage.facts``);
- pairs: a user message and the reply they rated up, or the better answer they wrote (which replaces the reply as
  the target, whatever the reply's rating or checker badge was: the words are the user's own).

Skipped, and counted in ``Selection.skipped`` for the dry run: replies rated down, replies the checker marked
unsupported or masked, incomplete replies, superseded messages (regenerated, edited, retried), conversations whose
``learn`` toggle is off, everything when the ``learn`` setting is off, and duplicates (same normalised text).
Deleted and forgotten items are simply gone from SQLite; the new forget records are handed on
(``Selection.forgotten``) so the job can purge its replay buffer and the adapters that contained them.

"New" is by id for statements and facts (ids are never reused), so imported history counts as new whatever its
dates; a reply is new when its feedback changed since the last run (see ``storage.learning`` on watermarks), so a
thumbs-up given today to an old reply brings it in. All reads happen in one snapshot of the database.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from storage.forgotten import ForgetRecord, list_forgotten
from storage.learning import (
    Watermarks,
    current_watermarks,
    facts_between,
    learning_candidates,
    prompt_of,
    snapshot,
)

if TYPE_CHECKING:
    from assistant.config import Settings
    from storage.db import Store

FLAGGED_BADGES = ("unsupported", "masked")
_FIRST_PERSON = re.compile(r"\b(?:I|I'm|I’m|I've|I’ve|I'd|I’d|I'll|I’ll|me|my|mine|myself)\b|\bMy\b|\bMe\b")
# First-person sentences that ask, thank or hedge rather than state something about the user.
_NOT_ABOUT_SELF = re.compile(
    r"^\W*(?:(?:and|but|so|well|ok(?:ay)?|thanks|thank you),?\s+)?I(?:\s+(?:just|really|also))?\s*(?:"
    r"want you|need you|would like you|'d like you|’d like you|would like (?:a|an|some|to know|to ask)|"
    r"'d like (?:a|an|some|to know|to ask)|’d like (?:a|an|some|to know|to ask)|need (?:a|an|some|help)|"
    r"wonder|was wondering|think|guess|mean|hope|see|understand|agree|disagree|appreciate|"
    r"am not sure|'m not sure|’m not sure|don't know|do not know|don't understand|have a question|"
    r"meant|asked|said|told you|forgot)\b",
    re.I,
)
_LOWER_I = re.compile(r"(?<![\w.-])i(?=\s|['’](?:m|ve|d|ll)\b)")
# "Remember that ..." in front of a fact is the request, not the fact.
_REMEMBER = re.compile(r"^\W*(?:please\s+)?(?:remember|note|keep in mind|don't forget)(?:\s+that)?[:,]?\s+", re.I)


class Source(NamedTuple):
    """Where an item came from: ``("message", id)`` or ``("fact", id)`` (what ``adapter_items`` records)."""

    kind: str
    id: int


@dataclass(slots=True, frozen=True)
class Statement:
    """One thing the user said about themselves (``origin`` "statement") or asked to be remembered ("fact")."""

    text: str
    source: Source
    origin: str = "statement"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.origin, "text": self.text, "source": list(self.source)}


@dataclass(slots=True, frozen=True)
class Pair:
    """A user message and the answer to learn for it: a reply rated up, or the user's better answer."""

    prompt: str
    target: str
    sources: tuple[Source, ...]  # the user message, then the reply
    better: bool = False  # the target is the user's better answer

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "pair",
            "prompt": self.prompt,
            "target": self.target,
            "sources": [list(s) for s in self.sources],
            "better": self.better,
        }


@dataclass(slots=True)
class Selection:
    statements: list[Statement] = field(default_factory=list)
    facts: list[Statement] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    since: Watermarks = field(default_factory=Watermarks)
    watermarks: Watermarks = field(default_factory=Watermarks)  # how far this selection reached: the run records it
    forgotten: list[ForgetRecord] = field(default_factory=list)  # forget records new since the last run
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def empty(self) -> bool:
        """Nothing new to learn and nothing new to unlearn."""
        return not (self.statements or self.facts or self.pairs or self.forgotten)

    def sources(self) -> list[Source]:
        """Every source of every item, once (what ``adapter_items`` gets)."""
        found: dict[Source, None] = {}
        for item in [*self.statements, *self.facts]:
            found[item.source] = None
        for pair in self.pairs:
            found.update(dict.fromkeys(pair.sources))
        return list(found)

    def counts(self) -> dict[str, Any]:
        return {
            "statements": len(self.statements),
            "facts": len(self.facts),
            "pairs": len(self.pairs),
            "better_answers": sum(p.better for p in self.pairs),
            "forgotten": len(self.forgotten),
            "skipped": dict(sorted(self.skipped.items())),
        }


def normalised(text: str) -> str:
    """The form two mentions of one thing share: case, punctuation and spacing aside."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.replace("’", "'").casefold()).split())


def about_self(sentence: str) -> bool:
    """Whether a stated sentence is about the user themselves (first person, not a request or a hedge)."""
    return bool(_FIRST_PERSON.search(sentence)) and not _NOT_ABOUT_SELF.match(sentence)


def statements_in(text: str) -> list[str]:
    """The sentences of a user message that state something about the user ("i" typed in lower case is "I")."""
    from assistant.reply_check import stated

    return [s for s in stated([_LOWER_I.sub("I", text)]) if about_self(s)]


def fact_text(text: str) -> str:
    """A remembered fact without the "remember that" in front."""
    stripped = _REMEMBER.sub("", text.strip())
    return stripped[:1].upper() + stripped[1:] if stripped else stripped


def select(store: Store, since: Watermarks | None, settings: Settings | None = None) -> Selection:
    """What is new since ``since`` (the last completed run's watermarks; None: everything), judged and deduplicated."""
    with snapshot(store):
        return _select(store, since or Watermarks(), settings)


def _select(store: Store, since: Watermarks, settings: Settings | None) -> Selection:
    upto = current_watermarks(store)
    selection = Selection(since=since, watermarks=upto)
    selection.forgotten = [r for r in list_forgotten(store, after_id=since.forgotten) if r.id <= upto.forgotten]
    if settings is not None and not settings.learn:
        selection.skipped["learn_setting_off"] += 1
        return selection
    seen: set[str] = set()

    def fresh(key: str) -> bool:
        if not key or key in seen:
            selection.skipped["duplicate"] += 1 if key else 0
            return False
        seen.add(key)
        return True

    replies: list[dict[str, Any]] = []
    for row in learning_candidates(store, since, upto):
        if not row["learn"]:
            selection.skipped["learn_off"] += 1
        elif row["superseded_by"] is not None:
            selection.skipped["superseded"] += 1
        elif row["role"] == "user":
            for sentence in statements_in(row["content"]):
                if fresh(normalised(sentence)):
                    selection.statements.append(Statement(sentence, Source("message", row["id"])))
        else:
            replies.append(row)

    for fact_id, text in facts_between(store, since.fact, upto.fact):
        text = fact_text(text)
        if fresh(normalised(text)):
            selection.facts.append(Statement(text, Source("fact", fact_id), origin="fact"))

    for row in replies:
        pair = _pair(store, row, selection.skipped)
        if pair is not None and fresh("\x1f".join((normalised(pair.prompt), normalised(pair.target)))):
            selection.pairs.append(pair)
    return selection


def _pair(store: Store, row: dict[str, Any], skipped: Counter[str]) -> Pair | None:
    better = (row["better_answer"] or "").strip()
    if not better:
        # The model's own reply is a target only when the user vouched for it and nothing speaks against it.
        if row["rating"] != 1:
            skipped["rated_down" if row["rating"] == -1 else "not_rated_up"] += 1
            return None
        if not row["complete"]:
            skipped["incomplete"] += 1
            return None
        if row["badge"] in FLAGGED_BADGES:
            skipped[f"badge_{row['badge']}"] += 1
            return None
    prompt = prompt_of(store, row["id"])
    if prompt is None or not prompt["content"].strip():
        skipped["no_prompt"] += 1
        return None
    if _command(prompt["content"]):
        # `/tool ...` and `/remember ...` are answered by the assistant itself, not the model: nothing to learn
        # (a remembered fact is learned as a fact).
        skipped["command"] += 1
        return None
    target = better or row["content"].strip()
    if not target:
        skipped["empty_reply"] += 1
        return None
    return Pair(
        prompt["content"].strip(),
        target,
        (Source("message", int(prompt["id"])), Source("message", int(row["id"]))),
        better=bool(better),
    )


def _command(text: str) -> bool:
    from assistant.memory_prompt import parse_remember
    from assistant.session_tools import is_tool_command

    remember = parse_remember(text)
    return is_tool_command(text) or (remember is not None and remember.command)

