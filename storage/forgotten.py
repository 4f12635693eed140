"""The record of what the user made the assistant forget: kind, id and time, never the content.

Triggers write it (migration m005) whenever a conversation, a message or a fact is deleted, by whatever path; the
learning job reads it to leave those ids out of what it trains on (ids are never reused, migration m004).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from storage.db import Store


@dataclass(slots=True, frozen=True)
class ForgetRecord:
    id: int
    kind: str  # "conversation", "message" or "fact"
    item_id: int
    conversation_id: int | None  # a message's (or the conversation's own) id
    forgotten_at: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def list_forgotten(store: Store, after_id: int = 0, kind: str | None = None) -> list[ForgetRecord]:
    """What was forgotten, oldest first; ``after_id`` skips the records a caller has already seen."""
    sql = "SELECT id, kind, item_id, conversation_id, forgotten_at FROM forgotten WHERE id > ?"
    params: list[object] = [after_id]
    if kind is not None:
        sql += " AND kind = ?"
        params.append(kind)
    with store.guard() as db:
        return [ForgetRecord(*row) for row in db.execute(sql + " ORDER BY id", params).fetchall()]


def forgotten_ids(store: Store, kind: str) -> set[int]:
    """Every id of one kind that was forgotten (for the learning job's filter)."""
    with store.guard() as db:
        return {row[0] for row in db.execute("SELECT item_id FROM forgotten WHERE kind = ?", [kind])}
