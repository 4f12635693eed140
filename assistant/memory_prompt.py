"""What memory adds to a prompt: remembered facts and recalled snippets of earlier conversations.

Facts go into the system prompt (newest first, within their share of the token budget) because the user asked for
them explicitly; they change only when a fact is added or forgotten. Recalled snippets new to the conversation fill
what is left, best score first, each labelled with its date and who said it, as a note before the new message:
once given, a note stays in the conversation's history where it was, so the start of the prompt never changes and
llama.cpp reads only what is new. Nothing here touches the store or the index: the session hands in what it found
and gets back what fits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from storage.facts import Fact
    from storage.memory import Recall
    from storage.records import Message

FACTS_HEADER = "Facts the user asked you to remember:"
RECALL_HEADER = "From earlier conversations (use only if relevant):"
FACTS_SHARE_WITH_RECALLS = 2 / 3  # facts may not crowd recalled snippets out entirely
SNIPPET_SHARE = 1 / 3  # one long snippet may not take the whole budget
MIN_SNIPPET_TOKENS = 24
RECALL_HEADER_TOKENS = 16  # what the note's header line costs, with room to spare (12 tokens for SmolLM2)

_COMMAND = re.compile(r"\A\s*/remember(?:\s+(?P<fact>.*))?\Z", re.IGNORECASE | re.DOTALL)
_NATURAL = re.compile(r"\A\s*(?:please\s*,?\s+)?remember\s+that\s+(?P<fact>\S.*)\Z", re.IGNORECASE | re.DOTALL)
# "Remember that I am vegetarian. What should I cook?": the fact is the statement, not the question after it.
_STATEMENT_THEN_QUESTION = re.compile(r"\A(?P<fact>.*?[.!;])\s+[^.!?;]*\?\s*\Z", re.DOTALL)


class Counter(Protocol):
    def count_tokens(self, text: str) -> int: ...


@dataclass(slots=True)
class RememberRequest:
    fact: str
    command: bool  # `/remember X` (answered without the model) rather than "remember that X" (the model replies)


def parse_remember(text: str) -> RememberRequest | None:
    """Recognise `/remember X` and "remember that X" (case-insensitive, at the start of the message)."""
    if match := _COMMAND.match(text):
        return RememberRequest((match.group("fact") or "").strip(), command=True)
    if match := _NATURAL.match(text):
        fact = match.group("fact").strip().split("\n", 1)[0].strip()
        if statement := _STATEMENT_THEN_QUESTION.match(fact):
            fact = statement.group("fact")
        return RememberRequest(fact, command=False)
    return None


def remember_confirmation(fact: str, fact_id: int, memory_on: bool) -> str:
    """The reply to `/remember X`, written without the model."""
    text = f"Noted. I will remember: {fact} (fact {fact_id}; `assistant memory forget {fact_id}` removes it)."
    if not memory_on:
        text += " Memory is off right now, so I will use it once memory is turned back on."
    return text


def day_of(timestamp: str) -> str:
    """The local date of a stored ISO timestamp, e.g. 2026-11-02 (the stamp itself if it does not parse)."""
    try:
        return datetime.fromisoformat(timestamp).astimezone().date().isoformat()
    except (TypeError, ValueError):
        return str(timestamp)[:10]


def snippet_label(recall: Recall) -> str:
    who = {"user": "You said", "assistant": "I said"}.get(recall.role, f"{recall.role.title()} said")
    return f"[{day_of(recall.created_at)}] {who}: "


def clip(counter: Counter, text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` tokens at a word boundary, with an ellipsis when cut."""
    if counter.count_tokens(text) <= limit:
        return text
    chars = max(1, int(len(text) * limit / max(counter.count_tokens(text), 1)))
    while chars > 1:
        cut = text[:chars].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
        if counter.count_tokens(cut) <= limit:
            return cut
        chars = int(chars * 0.85)
    return "…"


def _flat(text: str) -> str:
    return " ".join(text.split())


@dataclass(slots=True)
class MemoryBlock:
    """What memory adds to one turn: facts for the system prompt, and a note of snippets for the new message."""

    facts_text: str = ""  # the facts block, appended to the system prompt (stable from turn to turn)
    note: str = ""  # the recalled snippets new to the conversation, put before the new message
    facts: list[Fact] = field(default_factory=list)
    recalls: list[Recall] = field(default_factory=list)
    dropped_budget: int = 0

    @property
    def text(self) -> str:
        return "\n".join(part for part in (self.facts_text, self.note) if part)


def _cost(counter: Counter, line: str) -> int:
    return counter.count_tokens(line) + 1  # the newline


def snippet_limit(budget: int) -> int:
    """Tokens one recalled snippet may take: a function of the budget alone, so a note renders the same later.

    A third of the budget, but small enough that one snippet (and the note's header) fits beside facts that take
    their whole share.
    """
    beside_facts = budget - int(budget * FACTS_SHARE_WITH_RECALLS) - RECALL_HEADER_TOKENS
    return max(MIN_SNIPPET_TOKENS, min(int(budget * SNIPPET_SHARE), beside_facts))


def snippet_line(counter: Counter, recall: Recall, limit: int) -> str:
    """One dated, attributed snippet, clipped to ``limit`` tokens (label included)."""
    label = snippet_label(recall)
    return label + clip(counter, _flat(recall.text), max(1, limit - _cost(counter, label)))


def render_note(counter: Counter, recalls: Sequence[Recall], budget: int) -> str:
    """The note for recalled snippets, in the order given; the same input always renders the same text.

    Earlier turns' notes are rebuilt from the record of what each reply was given (``recalls``), so a note once
    read by the model stays exactly as it was and the conversation's prefix in llama.cpp's cache stays valid.
    """
    if not recalls:
        return ""
    limit = snippet_limit(budget)
    return "\n".join([RECALL_HEADER, *(snippet_line(counter, r, limit) for r in recalls)])


def with_note(note: str, text: str) -> str:
    """A user message with its note of recalled snippets before it."""
    return f"{note}\n\n{text}" if note else text


@dataclass(slots=True)
class NotedHistory:
    """Earlier turns with the notes they were given, and what those notes hold."""

    messages: list[dict[str, str]] = field(default_factory=list)
    seen: frozenset[int] = frozenset()  # ids of the messages recalled into the notes
    note_tokens: int = 0  # what the notes cost


def history_with_notes(
    messages: Sequence[Message], notes: Mapping[int, Sequence[Recall]], counter: Counter, budget: int
) -> NotedHistory:
    """Earlier turns as the model read them: each message of the user after the note its reply was given.

    ``notes`` maps a reply's id to what it was given (in order); the ids of every snippet given come back too, so
    recall can leave them out (they are still in the history).
    """
    past = [{"role": m.role, "content": m.content} for m in messages]
    seen: set[int] = set()
    tokens = 0
    asked: int | None = None  # the latest message of the user not yet answered
    for index, message in enumerate(messages):
        if message.role == "user":
            asked = index
        elif message.role == "assistant" and asked is not None and notes.get(message.id):
            recalls = notes[message.id]
            seen.update(r.message_id for r in recalls)
            note = render_note(counter, recalls, budget)
            tokens += counter.count_tokens(note)
            past[asked] = {"role": "user", "content": with_note(note, messages[asked].content.strip())}
            asked = None
    return NotedHistory(past, frozenset(seen), tokens)


def build_memory_block(
    counter: Counter,
    facts: Sequence[Fact],
    recalls: Sequence[Recall],
    budget: int,
    seen: frozenset[int] = frozenset(),
    given_tokens: int = 0,
) -> MemoryBlock:
    """Facts (newest first) within their share of ``budget``, then the best recalled snippets in what is left.

    The facts' share does not depend on what is recalled, so the system prompt stays the same from turn to turn.
    ``seen`` are ids of messages already given earlier in the conversation (they are still in its history) and
    ``given_tokens`` what those notes cost: they count against the budget, but a new turn always has room for one
    new snippet (its topic may be new).
    """
    block = MemoryBlock()
    if budget <= 0:
        block.dropped_budget = len(recalls)
        return block
    fact_lines: list[str] = []
    used = 0
    if facts:
        used = _cost(counter, FACTS_HEADER)
        for fact in facts:
            line = f"- {_flat(fact.text)}"
            line_cost = _cost(counter, line)
            if used + line_cost > int(budget * FACTS_SHARE_WITH_RECALLS):
                continue  # an older, shorter fact may still fit
            fact_lines.append(line)
            block.facts.append(fact)
            used += line_cost
        if not fact_lines:
            used = 0
    block.facts_text = "\n".join([FACTS_HEADER, *fact_lines]) if fact_lines else ""
    while block.facts_text and counter.count_tokens(block.facts_text) > budget:  # the real count decides
        fact_lines.pop()
        block.facts.pop()
        block.facts_text = "\n".join([FACTS_HEADER, *fact_lines]) if fact_lines else ""
    facts_tokens = counter.count_tokens(block.facts_text) if block.facts_text else 0
    limit = snippet_limit(budget)
    one = min(limit + RECALL_HEADER_TOKENS, budget - facts_tokens)  # the note's header and one snippet
    room = budget - facts_tokens - given_tokens
    most = None if room >= one else 1  # the budget is spent on earlier notes: the best new snippet only
    room = free = max(room, one)
    known = {_flat(f.text).casefold() for f in block.facts}
    header_cost = _cost(counter, RECALL_HEADER)
    for recall in sorted(recalls, key=lambda r: r.score, reverse=True):
        if most is not None and len(block.recalls) >= most:
            block.dropped_budget += 1
            continue
        body = _flat(recall.text)
        if not body or body.casefold() in known or recall.message_id in seen:
            continue
        line_cost = _cost(counter, snippet_line(counter, recall, limit))
        if line_cost + (0 if block.recalls else header_cost) > free:
            block.dropped_budget += 1
            continue
        known.add(body.casefold())
        block.recalls.append(recall)
        free -= line_cost + (0 if len(block.recalls) > 1 else header_cost)
    block.note = render_note(counter, block.recalls, budget)
    # The per-line sums are an estimate; the real count of the joined text decides.
    while block.recalls and counter.count_tokens(block.note) > room:
        block.recalls.pop()
        block.dropped_budget += 1
        block.note = render_note(counter, block.recalls, budget)
    return block
