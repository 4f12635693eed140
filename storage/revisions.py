"""Superseded messages (a regenerated reply, an edited message and what followed it, a retried failed reply) and
the recalled snippets each reply of a conversation was given (to rebuild its notes exactly)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from storage.db import Store

if TYPE_CHECKING:
    from storage.memory import Recall


def supersede(store: Store, message_ids: Iterable[int], by: int) -> None:
    """Mark messages as replaced by message ``by``: kept stored, left out of the conversation and its prompts."""
    ids = [int(i) for i in message_ids if int(i) != by]
    if not ids:
        return
    marks = ", ".join("?" for _ in ids)
    with store.guard(write=True) as db:
        db.execute(f"UPDATE messages SET superseded_by = ? WHERE id IN ({marks})", [by, *ids])


def superseded_among(store: Store, message_ids: Iterable[int]) -> set[int]:
    """Which of ``message_ids`` are superseded (recall leaves them out)."""
    ids = list(message_ids)
    if not ids:
        return set()
    marks = ", ".join("?" for _ in ids)
    with store.guard() as db:
        rows = db.execute(
            f"SELECT id FROM messages WHERE id IN ({marks}) AND superseded_by IS NOT NULL", ids
        ).fetchall()
    return {int(r[0]) for r in rows}


def recalled_for(store: Store, reply_ids: Iterable[int]) -> dict[int, list[Recall]]:
    """For each reply, the earlier messages it was given from memory, in the order it was given them."""
    from storage.memory import Recall

    ids = list(reply_ids)
    if not ids:
        return {}
    marks = ", ".join("?" for _ in ids)
    sql = (
        "SELECT r.message_id, m.id, m.conversation_id, m.role, m.content, r.score, m.created_at "
        "FROM recalls r JOIN messages m ON m.id = r.memory_message_id "
        f"WHERE r.message_id IN ({marks}) ORDER BY r.message_id, r.rank, r.id"
    )
    out: dict[int, list[Recall]] = {}
    with store.guard() as db:
        for row in db.execute(sql, ids).fetchall():
            out.setdefault(int(row[0]), []).append(
                Recall(int(row[1]), int(row[2]), row[3], row[4], float(row[5] or 0.0), row[6])
            )
    return out
