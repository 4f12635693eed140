"""Versioned schema: numbered migration functions, applied in order and recorded in ``_migrations``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            model TEXT,
            source TEXT NOT NULL DEFAULT 'chat'
        )"""
    )
    db.execute(
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            model TEXT,
            adapter TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            ttft_ms REAL,
            tokens_per_s REAL,
            duration_ms REAL,
            finish_reason TEXT,
            complete INTEGER NOT NULL DEFAULT 1,
            error TEXT,
            context_trimmed INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute("CREATE INDEX messages_conversation ON messages(conversation_id, id)")
    db.execute("CREATE INDEX conversations_updated ON conversations(updated_at)")
    db.execute(
        """
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL UNIQUE REFERENCES messages(id) ON DELETE CASCADE,
            rating INTEGER CHECK (rating IN (-1, 1)),
            better_answer TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE models (
            name TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            source TEXT NOT NULL,
            added_at TEXT NOT NULL
        )"""
    )
    # Full-text search over messages, kept in step by triggers (external content table).
    db.table("messages").enable_fts(["content"], tokenize="porter unicode61", create_triggers=True)


def apply_migrations(db: sqlite_utils.Database) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    if "_migrations" not in db.table_names():
        db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row["name"] for row in db["_migrations"].rows}
    applied: list[str] = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with db.conn:
            fn(db)
            db.table("_migrations").insert({"name": name, "applied_at": datetime.now(UTC).isoformat()})
        applied.append(name)
    return applied


@migration
def m002_memory(db: sqlite_utils.Database) -> None:
    # Facts the user asked the assistant to remember; they go into the system prompt.
    db.execute(
        """
        CREATE TABLE facts (
            id INTEGER PRIMARY KEY,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL,
            source_message_id INTEGER REFERENCES messages(id) ON DELETE SET NULL
        )"""
    )
    # What a reply was given from memory: earlier messages (recalled) and facts.
    db.execute(
        """
        CREATE TABLE recalls (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            memory_message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            fact_id INTEGER REFERENCES facts(id) ON DELETE CASCADE,
            score REAL,
            rank INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute("CREATE INDEX recalls_message ON recalls(message_id)")
    # Messages already in the vector index; the rest are pending (a durable queue that survives a crash).
    db.execute(
        """
        CREATE TABLE vector_indexed (
            message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            indexed_at TEXT NOT NULL
        )"""
    )
    # Messages deleted from SQLite whose vectors still have to go: written by a trigger, so no deletion path
    # (conversation cascade, single message, import rollback) can leave a vector behind unnoticed.
    db.execute("CREATE TABLE vector_tombstones (message_id INTEGER PRIMARY KEY)")
    db.execute(
        """
        CREATE TRIGGER messages_vector_tombstone BEFORE DELETE ON messages
        WHEN EXISTS (SELECT 1 FROM vector_indexed WHERE message_id = old.id)
        BEGIN
            INSERT OR IGNORE INTO vector_tombstones (message_id) VALUES (old.id);
        END"""
    )


@migration
def m003_superseded(db: sqlite_utils.Database) -> None:
    # A regenerated reply, an edited message and what followed it, or a failed reply that was retried stay stored
    # (the learning job reads a regenerated pair as a preference) but leave the conversation: superseded_by points
    # at the message that replaced them. Deleting that message brings them back.
    db.execute("ALTER TABLE messages ADD COLUMN superseded_by INTEGER REFERENCES messages(id) ON DELETE SET NULL")
    db.execute("CREATE INDEX messages_superseded_by ON messages(superseded_by)")
