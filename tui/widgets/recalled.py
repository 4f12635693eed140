"""What a reply was given from memory: a collapsed "recalled N memories" section under the reply.

Built from the turn while it streams (``turn.memories``, ``turn.facts``), or from the recorded recalls for replies
loaded from the database. A memory forgotten since is no longer recorded (the rows cascade), so it is not shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.widgets import Collapsible, Static

if TYPE_CHECKING:
    from storage.db import Store
    from storage.facts import Fact
    from storage.memory import Recall

SHOWN_CHARS = 240  # a snippet is a reminder of what was recalled, not the whole message


@dataclass(slots=True, frozen=True)
class RecalledItem:
    """One memory a reply was given: a fact, or a message of an earlier conversation."""

    kind: str  # "fact" or "snippet"
    text: str
    created_at: str | None = None
    score: float | None = None
    role: str | None = None


def items_from_turn(memories: Iterable[Recall], facts: Iterable[Fact]) -> list[RecalledItem]:
    """The memories of a turn in progress (facts first, as they are recorded)."""
    items = [RecalledItem("fact", f.text, f.created_at) for f in facts]
    items += [RecalledItem("snippet", r.text, r.created_at, r.score, r.role) for r in memories]
    return items


def items_from_store(store: Store, message_ids: Iterable[int]) -> dict[int, list[RecalledItem]]:
    """The recorded memories of stored replies, by reply id (replies given none are left out)."""
    from assistant.errors import NotFoundError
    from storage.facts import list_facts, recalls_for

    facts: dict[int, Fact] | None = None
    found: dict[int, list[RecalledItem]] = {}
    for message_id in message_ids:
        items: list[RecalledItem] = []
        for record in recalls_for(store, message_id):
            if record.fact_id is not None:
                if facts is None:  # read once, and only for conversations that used facts
                    facts = {f.id: f for f in list_facts(store)}
                fact = facts.get(record.fact_id)
                if fact is not None:
                    items.append(RecalledItem("fact", fact.text, fact.created_at))
            elif record.memory_message_id is not None:
                try:
                    message = store.get_message(record.memory_message_id)
                except NotFoundError:
                    continue
                items.append(RecalledItem("snippet", message.content, message.created_at, record.score, message.role))
        if items:
            found[message_id] = items
    return found


def title(count: int) -> str:
    return f"recalled {count} {'memory' if count == 1 else 'memories'}"


def describe(items: list[RecalledItem]) -> Text:
    """One line per memory: date, score, who said it, and the start of the text."""
    text = Text()
    for number, item in enumerate(items):
        if number:
            text.append("\n")
        day = (item.created_at or "")[:10]
        if item.kind == "fact":
            text.append("fact", style="bold green")
            if day:
                text.append(f" · {day}", style="dim")
        else:
            text.append(day or "earlier", style="bold cyan")
            if item.score is not None:
                text.append(f" · score {item.score:.2f}", style="dim")
            text.append(f" · {'you' if item.role == 'user' else 'assistant'}", style="dim")
        shown = " ".join(item.text.split())
        if len(shown) > SHOWN_CHARS:
            shown = shown[:SHOWN_CHARS].rstrip() + "…"
        text.append(f"  {shown}")
    return text


class Recalled(Collapsible):
    """The memories a reply was given, collapsed by default."""

    def __init__(self, items: list[RecalledItem]) -> None:
        self.items = list(items)
        super().__init__(Static(describe(self.items), classes="recalled-list"), title=title(len(self.items)))
        self.add_class("recalled")

    def on_click(self, event: events.Click) -> None:
        event.stop()  # opening the list is not picking the reply for F3, F4, F5 and F9
