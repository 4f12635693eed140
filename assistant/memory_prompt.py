"""The memory block of the system prompt: remembered facts and recalled snippets of earlier conversations.

Facts come first (newest first) because the user asked for them explicitly; recalled snippets fill what is left of
the token budget, best score first, each labelled with its date and who said it. Nothing here touches the store or
the index: the session hands in what it found and gets back what fits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from storage.facts import Fact
    from storage.memory import Recall

FACTS_HEADER = "Facts the user asked you to remember:"
RECALL_HEADER = "From earlier conversations (use only if relevant):"
FACTS_SHARE_WITH_RECALLS = 2 / 3  # facts may not crowd recalled snippets out entirely
SNIPPET_SHARE = 1 / 3  # one long snippet may not take the whole budget
MIN_SNIPPET_TOKENS = 24

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
    text: str = ""
    tokens: int = 0
    facts: list[Fact] = field(default_factory=list)
    recalls: list[Recall] = field(default_factory=list)
    dropped_low_score: int = 0
    dropped_budget: int = 0


def build_memory_block(
    counter: Counter,
    facts: Sequence[Fact],
    recalls: Sequence[Recall],
    budget: int,
    min_score: float = 0.0,
) -> MemoryBlock:
    """Facts (newest first), then recalled snippets (best first), as many as fit ``budget`` tokens."""
    block = MemoryBlock()
    if budget <= 0:
        block.dropped_budget = len(recalls)
        return block
    candidates = sorted((r for r in recalls if r.score >= min_score), key=lambda r: r.score, reverse=True)
    block.dropped_low_score = len(recalls) - len(candidates)

    def cost(line: str) -> int:
        return counter.count_tokens(line) + 1  # the newline

    fact_lines: list[str] = []
    used = 0
    fact_budget = int(budget * FACTS_SHARE_WITH_RECALLS) if candidates else budget
    if facts:
        used = cost(FACTS_HEADER)
        for fact in facts:
            line = f"- {_flat(fact.text)}"
            line_cost = cost(line)
            if used + line_cost > fact_budget:
                continue  # an older, shorter fact may still fit
            fact_lines.append(line)
            block.facts.append(fact)
            used += line_cost
        if not fact_lines:
            used = 0

    recall_lines: list[str] = []
    seen = {_flat(f.text).casefold() for f in block.facts}
    header_cost = cost(RECALL_HEADER)
    per_snippet = max(MIN_SNIPPET_TOKENS, int(budget * SNIPPET_SHARE))
    for recall in candidates:
        body = _flat(recall.text)
        if not body or body.casefold() in seen:
            continue
        label = snippet_label(recall)
        free = budget - used - (0 if recall_lines else header_cost)
        room = min(per_snippet, free) - cost(label)
        if room < MIN_SNIPPET_TOKENS // 2:
            block.dropped_budget += 1
            continue
        line = label + clip(counter, body, room)
        line_cost = cost(line)
        if line_cost > free:
            block.dropped_budget += 1
            continue
        seen.add(body.casefold())
        recall_lines.append(line)
        block.recalls.append(recall)
        used += line_cost + (0 if len(recall_lines) > 1 else header_cost)

    def render() -> str:
        parts: list[str] = []
        if fact_lines:
            parts += [FACTS_HEADER, *fact_lines]
        if recall_lines:
            parts += [RECALL_HEADER, *recall_lines]
        return "\n".join(parts)

    # The per-line sums are an estimate; the real count of the joined text decides.
    text = render()
    while text and counter.count_tokens(text) > budget:
        if recall_lines:
            recall_lines.pop()
            block.recalls.pop()
            block.dropped_budget += 1
        else:
            fact_lines.pop()
            block.facts.pop()
        text = render()
    block.text = text
    block.tokens = counter.count_tokens(text) if text else 0
    return block
