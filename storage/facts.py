"""Facts the user asked to be remembered, and the record of what each reply was given from memory."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Store, now
from storage.errors import InputError, NotFoundError

MAX_FACT_CHARS = 2000


@dataclass(slots=True)
class Fact:
    id: int
    text: str
    created_at: str
    source_message_id: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "text": self.text, "created_at": self.created_at}


@dataclass(slots=True)
class RecallRecord:
    """One memory given to a reply: an earlier message or a fact."""

    memory_message_id: int | None
    fact_id: int | None
    score: float | None
    rank: int


def add_fact(store: Store, text: str, source_message_id: int | None = None) -> int:
    text = " ".join(text.split())
    if not text:
        raise InputError("Nothing to remember: the fact is empty.")
    if len(text) > MAX_FACT_CHARS:
        raise InputError(f"A fact can be at most {MAX_FACT_CHARS:,} characters; this one has {len(text):,}.")
    with store.guard(write=True) as db:
        cursor = db.execute(
            "INSERT INTO facts (text, created_at, source_message_id) VALUES (?, ?, ?)",
            [text, now(), source_message_id],
        )
        return int(cursor.lastrowid or 0)


def list_facts(store: Store, query: str = "") -> list[Fact]:
    """Every fact, newest first; ``query`` keeps those containing it (case-insensitive)."""
    sql, params = "SELECT id, text, created_at, source_message_id FROM facts", []
    if query.strip():
        sql += " WHERE instr(lower(text), lower(?)) > 0"
        params.append(query.strip())
    sql += " ORDER BY id DESC"
    with store.guard() as db:
        return [Fact(*row) for row in db.execute(sql, params).fetchall()]


def delete_fact(store: Store, fact_id: int) -> None:
    with store.guard(write=True) as db:
        if db.execute("DELETE FROM facts WHERE id = ?", [fact_id]).rowcount == 0:
            raise NotFoundError(f"There is no fact {fact_id}; `assistant memory facts` lists them.")


def record_recalls(store: Store, message_id: int, recalls: list[RecallRecord]) -> None:
    """Keep what a reply was given from memory (shown in the TUI, exported, used by the learning job)."""
    if not recalls:
        return
    with store.guard(write=True) as db:
        db.conn.executemany(
            "INSERT INTO recalls (message_id, memory_message_id, fact_id, score, rank) VALUES (?, ?, ?, ?, ?)",
            [(message_id, r.memory_message_id, r.fact_id, r.score, r.rank) for r in recalls],
        )


def recalls_for(store: Store, message_id: int) -> list[RecallRecord]:
    with store.guard() as db:
        rows = db.execute(
            "SELECT memory_message_id, fact_id, score, rank FROM recalls WHERE message_id = ? ORDER BY rank",
            [message_id],
        ).fetchall()
    return [RecallRecord(*row) for row in rows]
