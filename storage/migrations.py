"""Versioned schema: numbered migration functions, applied in order and recorded in ``_migrations``."""

from __future__ import annotations

import re
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


def pending_migrations(db: sqlite_utils.Database) -> list[str]:
    """The migrations not yet applied to this database (reads only)."""
    if "_migrations" not in db.table_names():
        return [name for name, _ in MIGRATIONS]
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    return [name for name, _ in MIGRATIONS if name not in done]


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


# Tables whose ids other records (the forgotten list, the learning job's selections) point at: an id must never
# be given to a new row once its row is deleted, or "forget message 7" would also forget the next message 7.
NEVER_REUSED = ("conversations", "messages", "feedback", "facts")


def _with_autoincrement(create_sql: str, table: str, new_name: str) -> str | None:
    """The table's CREATE statement for its copy under ``new_name``, its id AUTOINCREMENT; None if it already is."""
    if re.search(r"\bAUTOINCREMENT\b", create_sql, re.IGNORECASE):
        return None
    sql, swapped = re.subn(
        r"\bid\s+INTEGER\s+PRIMARY\s+KEY\b",
        "id INTEGER PRIMARY KEY AUTOINCREMENT",
        create_sql,
        count=1,
        flags=re.IGNORECASE,
    )
    if not swapped:
        raise RuntimeError(f"table {table} has no 'id INTEGER PRIMARY KEY' column to make AUTOINCREMENT")
    head = re.compile(rf'^\s*CREATE\s+TABLE\s+(?:"{table}"|{table})\s*\(', re.IGNORECASE)
    if not head.match(sql):
        raise RuntimeError(f"unexpected CREATE statement for table {table}")
    return head.sub(f"CREATE TABLE {new_name} (", sql, count=1)


@migration
def m004_ids_never_reused(db: sqlite_utils.Database) -> None:
    # SQLite's plain rowid hands the highest id out again once its row is deleted; AUTOINCREMENT never does. A
    # table's id column cannot be altered, so each table is rebuilt the way SQLite documents (copy, drop, rename,
    # then recreate its indexes and triggers), every row keeping its id. The copy takes the table's own CREATE
    # statement, so columns added by earlier migrations come along. FTS5's external content is keyed by the same
    # ids, so the full-text index stays valid as it is.
    conn = db.conn
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")  # only outside a transaction; the copy must not cascade anything
    conn.execute("PRAGMA legacy_alter_table = ON")  # rename the copy without rewriting the other tables' references
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in NEVER_REUSED:
                (create_sql,) = conn.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]
                ).fetchone()
                new_name = f"{table}_autoincrement"
                copy_sql = _with_autoincrement(create_sql, table, new_name)
                if copy_sql is None:
                    continue
                dependants = conn.execute(
                    "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
                    "AND sql IS NOT NULL ORDER BY type, name",
                    [table],
                ).fetchall()
                conn.execute(copy_sql)
                conn.execute(f"INSERT INTO {new_name} SELECT * FROM {table}")
                conn.execute(f"DROP TABLE {table}")  # its indexes and triggers go with it; no trigger fires
                conn.execute(f"ALTER TABLE {new_name} RENAME TO {table}")
                for (sql,) in dependants:
                    conn.execute(sql)
            # A deleted message still waiting for its vectors to go left its id in a tombstone: never reuse it either.
            (tombstoned,) = conn.execute("SELECT coalesce(max(message_id), 0) FROM vector_tombstones").fetchone()
            if tombstoned:
                conn.execute("DELETE FROM sqlite_sequence WHERE name = 'messages' AND seq < ?", [tombstoned])
                conn.execute(
                    "INSERT INTO sqlite_sequence (name, seq) SELECT 'messages', ? "
                    "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages')",
                    [tombstoned],
                )
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"foreign keys broken by the rebuild: {problems[:5]}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA legacy_alter_table = OFF")
        conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")


@migration
def m005_forgotten(db: sqlite_utils.Database) -> None:
    # What the user made the assistant forget, and when: ids and time, never the content. The learning job reads
    # it to train without what was forgotten. Written by triggers, so every path that deletes (a conversation and
    # its messages by cascade, one message, one fact) leaves its record; the rows live and die with the deletion's
    # own transaction.
    db.execute(
        """
        CREATE TABLE forgotten (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('conversation', 'message', 'fact')),
            item_id INTEGER NOT NULL,
            conversation_id INTEGER,
            forgotten_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX forgotten_item ON forgotten(kind, item_id)")
    stamp = "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"  # the format of storage.db.now()
    for kind, table, conversation in (
        ("conversation", "conversations", "old.id"),
        ("message", "messages", "old.conversation_id"),
        ("fact", "facts", "NULL"),
    ):
        db.execute(
            f"""
            CREATE TRIGGER {table}_forgotten AFTER DELETE ON {table}
            BEGIN
                INSERT INTO forgotten (kind, item_id, conversation_id, forgotten_at)
                VALUES ('{kind}', old.id, {conversation}, {stamp});
            END"""
        )


@migration
def m006_checks(db: sqlite_utils.Database) -> None:
    # The checker's verdict on each reply, stored with it so that history, export and the learning job (which
    # skips unsupported replies) read it without running the checker again. No index on ``badge``: the learning
    # job reads a day's replies by time and filters those, a scan it does anyway.
    db.execute("ALTER TABLE messages ADD COLUMN checks TEXT")
    db.execute("ALTER TABLE messages ADD COLUMN badge TEXT CHECK (badge IN ('ok', 'check', 'unsupported', 'masked'))")


@migration
def m007_learning(db: sqlite_utils.Database) -> None:
    # The learning job's records. ``conversations.learn`` is the user's per-conversation "never learn from this".
    # A run keeps the watermarks it selected up to (ids are never reused, m004, so "id > watermark" is exactly
    # what is new, imported history included, whatever its timestamps say); feedback is read by the time it was
    # last changed, since a thumbs-up can land on an old reply. An adapter belongs to one base model (its name and
    # file fingerprint); a partial unique index keeps at most one active per base model whatever path writes it.
    # ``adapter_items`` lists the ids each adapter was trained on (ids only, like ``forgotten``), so forgetting an
    # item finds the adapters that contained it.
    db.execute("ALTER TABLE conversations ADD COLUMN learn INTEGER NOT NULL DEFAULT 1 CHECK (learn IN (0, 1))")
    db.execute(
        """
        CREATE TABLE learning_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'promoted', 'refused', 'failed', 'nothing', 'dry')),
            message_watermark INTEGER NOT NULL DEFAULT 0,
            fact_watermark INTEGER NOT NULL DEFAULT 0,
            forgotten_watermark INTEGER NOT NULL DEFAULT 0,
            feedback_watermark TEXT NOT NULL DEFAULT '',
            adapter_version INTEGER REFERENCES adapters(version) ON DELETE SET NULL,
            report TEXT
        )"""
    )
    db.execute(
        """
        CREATE TABLE adapters (
            version INTEGER PRIMARY KEY AUTOINCREMENT,
            base_model TEXT NOT NULL,
            path TEXT NOT NULL,
            created_at TEXT NOT NULL,
            metrics TEXT,
            state TEXT NOT NULL DEFAULT 'candidate'
                CHECK (state IN ('candidate', 'active', 'inactive', 'refused', 'removed')),
            run_id INTEGER REFERENCES learning_runs(id) ON DELETE SET NULL
        )"""
    )
    db.execute("CREATE UNIQUE INDEX adapters_one_active ON adapters(base_model) WHERE state = 'active'")
    db.execute(
        """
        CREATE TABLE adapter_items (
            adapter_version INTEGER NOT NULL REFERENCES adapters(version) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('message', 'fact')),
            item_id INTEGER NOT NULL,
            PRIMARY KEY (adapter_version, kind, item_id)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX adapter_items_item ON adapter_items(kind, item_id)")


@migration
def m008_tools(db: sqlite_utils.Database) -> None:
    # The tool results a reply was given or written from (a JSON list of ToolResult.to_dict()), stored with the
    # reply so that history, export and the grounding of later turns read them without running the tool again.
    db.execute("ALTER TABLE messages ADD COLUMN tools TEXT")
