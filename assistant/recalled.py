"""What a reply was given from memory, as a front end shows it: the facts and the earlier messages, with their
dates and scores. Built from a turn in progress, or from the recalls recorded with stored replies (a memory
forgotten since is no longer recorded, so it is not shown)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.errors import NotFoundError

if TYPE_CHECKING:
    from storage.db import Store
    from storage.facts import Fact
    from storage.memory import Recall


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


def recalled_for(store: Store, message_ids: Iterable[int]) -> dict[int, list[RecalledItem]]:
    """The recorded memories of stored replies, by reply id (replies given none are left out)."""
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
