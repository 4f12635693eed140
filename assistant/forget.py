"""Forgetting: the one way to delete a conversation, a message or a fact, used by the CLI and the TUI alike.

SQLite is the truth, so a deletion is done when its row is gone: the full-text index follows by trigger, and a
trigger records what was forgotten and when (``storage.forgotten``: ids and time, never the content) for the
learning job to train without it. The vectors go at once when a ``Memory`` is open (pass it); otherwise the
tombstone trigger leaves them for the next index pass, and no search returns a message SQLite no longer has.
Facts are not in the vector index: forgetting one is a SQLite deletion only.

An active learning adapter trained on what was forgotten is turned off at once (the base model, or the user's
choice of an older adapter, answers until the next learning run trains one without it); ``Forgotten.notice`` says
so, for the CLI and the TUI to show.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.db import Store
    from storage.memory import Memory

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class Forgotten:
    """What one act of forgetting removed."""

    kind: str  # "conversation", "message" or "fact"
    id: int
    message_ids: tuple[int, ...] = ()  # a conversation's messages (superseded ones included), or the one message
    conversation_id: int | None = None  # the conversation, or the one the message was in
    vectors_removed: bool = False  # False: nothing was indexed, or the next index pass removes them
    adapters_off: tuple[int, ...] = ()  # active learning adapters trained on it, turned off

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"notice": self.notice}

    @property
    def notice(self) -> str | None:
        """One sentence when forgetting turned an adapter off, else None."""
        if not self.adapters_off:
            return None
        names = ", ".join(f"v{v}" for v in self.adapters_off)
        return (
            f"The learned adapter {names} was trained on it and is now off; the base model answers until the next "
            "learning run trains an adapter without it."
        )


def _adapters_off(store: Store, kind: str, ids: tuple[int, ...]) -> tuple[int, ...]:
    """Turn off the active adapters trained on these items; the versions turned off."""
    from storage.adapters import adapters_containing, set_adapter_state

    off = []
    for adapter in adapters_containing(store, "fact" if kind == "fact" else "message", ids):
        if adapter.state == "active":
            set_adapter_state(store, adapter.version, "inactive")
            off.append(adapter.version)
    return tuple(off)


def forget_conversation(store: Store, conversation_id: int, memory: Memory | None = None) -> Forgotten:
    """Delete a conversation with its messages, feedback and vectors; NotFoundError if there is none."""
    store.get_conversation(conversation_id)
    with store.guard() as db:
        ids = tuple(
            r[0] for r in db.execute("SELECT id FROM messages WHERE conversation_id = ? ORDER BY id", [conversation_id])
        )
    removed = _delete(
        lambda: store.delete_conversation(conversation_id),
        None if memory is None else lambda: memory.forget_conversation(conversation_id),
        lambda: _exists(store, "conversations", conversation_id),
    )
    return Forgotten(
        "conversation", conversation_id, ids, conversation_id, removed, _adapters_off(store, "message", ids)
    )


def forget_message(store: Store, message_id: int, memory: Memory | None = None) -> Forgotten:
    """Delete one message (its feedback too) and its vectors; NotFoundError if there is none."""
    message = store.get_message(message_id)
    removed = _delete(
        lambda: store.delete_message(message_id),
        None if memory is None else lambda: memory.forget_message(message_id),
        lambda: _exists(store, "messages", message_id),
    )
    off = _adapters_off(store, "message", (message_id,))
    return Forgotten("message", message_id, (message_id,), message.conversation_id, removed, off)


def forget_fact(store: Store, fact_id: int, memory: Memory | None = None) -> Forgotten:
    """Delete one remembered fact; NotFoundError if there is none. ``memory`` is accepted so that every kind is
    forgotten the same way (facts have no vectors today)."""
    from storage.facts import delete_fact

    delete_fact(store, fact_id)
    return Forgotten("fact", fact_id, adapters_off=_adapters_off(store, "fact", (fact_id,)))


def _delete(plain: Callable[[], None], everywhere: Callable[[], None] | None, exists: Callable[[], bool]) -> bool:
    """Run the deletion; True if the vectors went with it."""
    if everywhere is None:
        plain()
        return False
    try:
        everywhere()
    except Exception:
        if exists():
            raise  # SQLite kept the row: nothing was forgotten, say why
        # The row is gone and its tombstones stay until the vectors are removed by the next index pass.
        log.exception("the memory index could not drop the vectors now; the next index pass does")
        return False
    return True


def _exists(store: Store, table: str, row_id: int) -> bool:
    with store.guard() as db:
        return db.execute(f"SELECT 1 FROM {table} WHERE id = ?", [row_id]).fetchone() is not None
