"""The SQLite store: conversations, messages, feedback and the model registry.

One connection shared by the threads of one process (the TUI streams in a worker while the UI reads), guarded by a
lock. WAL lets a CLI and the TUI use the same database at once; a busy timeout rides out short locks, and a longer
lock becomes one clear sentence instead of a traceback.

A data dir (or database) that cannot be written is opened read-only, so the user can always read and export what
is stored; anything that would write says so in one sentence.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from storage.errors import NotFoundError, StorageError
from storage.migrations import apply_migrations, pending_migrations
from storage.paths import data_dir, db_path, ensure_private_dir, make_private
from storage.records import Conversation, Message, SearchHit

log = logging.getLogger(__name__)

TITLE_LENGTH = 60
MESSAGE_FIELDS = {
    "content",
    "model",
    "adapter",
    "prompt_tokens",
    "completion_tokens",
    "ttft_ms",
    "tokens_per_s",
    "duration_ms",
    "finish_reason",
    "complete",
    "error",
    "context_trimmed",
    "created_at",
    "checks",
    "badge",
    "tools",
}


def now() -> str:
    """The current time as ISO 8601 in UTC, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


def conversation_fingerprint(messages: Iterable[tuple[str, str, str]]) -> str:
    """A digest of a conversation's messages (role, content, time): the same conversation imported twice matches."""
    digest = hashlib.sha256()
    for role, content, created_at in messages:
        digest.update(f"{role}\x1f{content}\x1f{created_at}\x1e".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def fts_query(text: str) -> str:
    """Turn free text into a safe FTS5 query: every word quoted, so punctuation never breaks the syntax."""
    words = [w for w in text.replace('"', " ").split() if w]
    return " ".join(f'"{w}"' for w in words)


def explain(exc: sqlite3.Error, path: Path) -> StorageError:
    """One sentence for the user about a database error."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StorageError(
            f"The database {path} is locked by another program; close it (or another assistant) and try again."
        )
    if "full" in text:
        return StorageError(f"The disk holding {path} is full; free some space and try again. Nothing was lost.")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StorageError(
            f"The database {path} is damaged; restore it from a backup or move it aside to start a new one."
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StorageError(
            f"The database {path} cannot be written; fix the permissions of its directory or set ASSISTANT_HOME."
        )
    return StorageError(f"The database {path} reported an error: {exc}.")


class Store:
    """The assistant's SQLite database."""

    def __init__(self, path: Path, timeout: float = 5.0, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._lock = threading.RLock()
        if read_only:
            self.db = sqlite_utils.Database(_connect_read_only(path, timeout))
            self._check_schema_read_only()
            return
        try:
            conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            with self._lock:
                apply_migrations(self.db)
        except sqlite3.Error as exc:
            raise explain(exc, path) from exc
        for suffix in ("", "-wal", "-shm"):
            make_private(Path(f"{path}{suffix}"))

    def _check_schema_read_only(self) -> None:
        """A read-only database can be read only if no migration is due (applying one would write)."""
        try:
            pending = pending_migrations(self.db)
        except sqlite3.Error as exc:
            self.db.close()
            raise explain(exc, self.path) from exc
        if pending:
            self.db.close()
            raise StorageError(
                f"The database {self.path} is from an earlier version and needs an upgrade, but its directory is "
                "read-only; copy the data directory somewhere writable and point ASSISTANT_HOME at the copy."
            )

    # -- plumbing -------------------------------------------------------------------------------------------

    @contextmanager
    def guard(self, write: bool = False) -> Iterator[sqlite_utils.Database]:
        if write and self.read_only:
            raise StorageError(read_only_sentence(self.path))
        with self._lock:
            try:
                if write:
                    with self.db.conn:
                        self.db.execute("BEGIN IMMEDIATE")
                        yield self.db
                else:
                    yield self.db
            except sqlite3.Error as exc:
                raise explain(exc, self.path) from exc

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- conversations --------------------------------------------------------------------------------------

    def create_conversation(
        self, title: str = "", model: str | None = None, source: str = "chat", created_at: str | None = None
    ) -> int:
        stamp = created_at or now()
        with self.guard(write=True) as db:
            cursor = db.execute(
                "INSERT INTO conversations (title, created_at, updated_at, model, source) VALUES (?, ?, ?, ?, ?)",
                [title_from(title), stamp, stamp, model, source],
            )
            return int(cursor.lastrowid or 0)

    def get_conversation(self, conversation_id: int) -> Conversation:
        rows = self._conversation_rows("WHERE c.id = ?", [conversation_id])
        if not rows:
            raise NotFoundError(f"There is no conversation {conversation_id}; `assistant history list` shows them.")
        return rows[0]

    def list_conversations(self, filter_text: str = "", limit: int | None = None) -> list[Conversation]:
        where, params = "", []
        if filter_text:
            where = "WHERE c.title LIKE ? ESCAPE '\\'"
            escaped = filter_text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        order = " ORDER BY c.updated_at DESC, c.id DESC"
        if limit:
            order += f" LIMIT {int(limit)}"
        return self._conversation_rows(where + order, params)

    def _conversation_rows(self, tail: str, params: list[Any]) -> list[Conversation]:
        sql = (
            "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id AND m.superseded_by IS NULL) "
            "AS message_count "
            f"FROM conversations c {tail}"
        )
        with self.guard() as db:
            return [Conversation.from_row(dict(row)) for row in db.query(sql, params)]

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        self.get_conversation(conversation_id)
        with self.guard(write=True) as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", [title_from(title), conversation_id])

    def delete_conversation(self, conversation_id: int) -> None:
        self.get_conversation(conversation_id)
        with self.guard(write=True) as db:
            db.execute("DELETE FROM conversations WHERE id = ?", [conversation_id])

    def import_conversations(
        self, conversations: Iterable[dict[str, Any]], on_progress: Callable[[int], None] | None = None
    ) -> list[int | None]:
        """Insert whole conversations (messages and feedback included) in one transaction: all or nothing.

        A conversation is a dict of title, created_at, updated_at, model, source and ``messages``: dicts of
        role, content, any of MESSAGE_FIELDS, and optional rating / better_answer. One whose messages (role,
        content, time) are already stored is skipped, so importing a file twice adds nothing; its id is None.
        """
        ids: list[int | None] = []
        stamp = now()
        with self.guard(write=True) as db:
            known = self._fingerprints(db)
            for conversation in conversations:
                fingerprint = conversation_fingerprint(
                    (m["role"], m["content"], m.get("created_at") or "") for m in conversation["messages"]
                )
                if fingerprint in known:
                    ids.append(None)
                    if on_progress:
                        on_progress(1)
                    continue
                known.add(fingerprint)
                cursor = db.execute(
                    "INSERT INTO conversations (title, created_at, updated_at, model, source) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        title_from(conversation.get("title") or ""),
                        conversation["created_at"],
                        conversation["updated_at"],
                        conversation.get("model"),
                        conversation["source"],
                    ],
                )
                conversation_id = int(cursor.lastrowid or 0)
                new_ids: dict[Any, int] = {}  # exported id -> stored id, to link superseded messages again
                for message in conversation["messages"]:
                    record = {"conversation_id": conversation_id, "role": message["role"]}
                    record.update({k: v for k, v in message.items() if k in MESSAGE_FIELDS})
                    columns = ", ".join(record)
                    marks = ", ".join("?" for _ in record)
                    sql = f"INSERT INTO messages ({columns}) VALUES ({marks})"
                    message_id = db.execute(sql, list(record.values())).lastrowid
                    if message.get("id") is not None:
                        new_ids[message["id"]] = int(message_id or 0)
                    rating, better = message.get("rating"), message.get("better_answer")
                    if rating is not None or better:
                        db.execute(
                            "INSERT INTO feedback (message_id, rating, better_answer, created_at, "
                            "updated_at) VALUES (?, ?, ?, ?, ?)",
                            [message_id, rating, better or None, stamp, stamp],
                        )
                for message in conversation["messages"]:
                    replaced_by = new_ids.get(message.get("superseded_by"))
                    if replaced_by and message.get("id") in new_ids:
                        db.execute(
                            "UPDATE messages SET superseded_by = ? WHERE id = ?", [replaced_by, new_ids[message["id"]]]
                        )
                ids.append(conversation_id)
                if on_progress:
                    on_progress(1)
        return ids

    @staticmethod
    def _fingerprints(db: sqlite_utils.Database) -> set[str]:
        rows = db.execute(
            "SELECT conversation_id, role, content, created_at FROM messages ORDER BY conversation_id, id"
        )
        return {
            conversation_fingerprint((r[1], r[2], r[3]) for r in group)
            for _, group in itertools.groupby(rows, key=lambda r: r[0])
        }

    # -- messages -------------------------------------------------------------------------------------------

    def add_message(self, conversation_id: int, role: str, content: str, **fields: Any) -> int:
        """Store one message (and retitle an untitled conversation from its first user message)."""
        unknown = set(fields) - MESSAGE_FIELDS
        if unknown:
            raise TypeError(f"unknown message fields: {sorted(unknown)}")
        record = {"conversation_id": conversation_id, "role": role, "content": content, "created_at": now()}
        record.update(fields)
        with self.guard(write=True) as db:
            if not db.execute("SELECT 1 FROM conversations WHERE id = ?", [conversation_id]).fetchone():
                raise NotFoundError(f"There is no conversation {conversation_id}; `assistant history list` shows them.")
            columns = ", ".join(record)
            marks = ", ".join("?" for _ in record)
            cursor = db.execute(f"INSERT INTO messages ({columns}) VALUES ({marks})", list(record.values()))
            message_id = int(cursor.lastrowid or 0)
            db.execute(
                "UPDATE conversations SET updated_at = max(updated_at, ?), "
                "title = CASE WHEN title = '' AND ? = 'user' THEN ? ELSE title END WHERE id = ?",
                [record["created_at"], role, title_from(content), conversation_id],
            )
        return message_id

    def update_message(self, message_id: int, **fields: Any) -> None:
        unknown = set(fields) - MESSAGE_FIELDS
        if unknown:
            raise TypeError(f"unknown message fields: {sorted(unknown)}")
        with self.guard(write=True) as db:
            assignments = ", ".join(f"{name} = ?" for name in fields)
            db.execute(f"UPDATE messages SET {assignments} WHERE id = ?", [*fields.values(), message_id])

    def get_message(self, message_id: int) -> Message:
        rows = self._message_rows("WHERE m.id = ?", [message_id])
        if not rows:
            raise NotFoundError(f"There is no message {message_id}.")
        return rows[0]

    def messages(self, conversation_id: int, include_superseded: bool = False) -> list[Message]:
        """The conversation's messages in order; superseded ones (regenerated, edited, retried) only if asked."""
        current = "" if include_superseded else " AND m.superseded_by IS NULL"
        return self._message_rows(f"WHERE m.conversation_id = ?{current} ORDER BY m.id", [conversation_id])

    def _message_rows(self, tail: str, params: list[Any]) -> list[Message]:
        sql = (
            "SELECT m.*, f.rating AS rating, f.better_answer AS better_answer "
            f"FROM messages m LEFT JOIN feedback f ON f.message_id = m.id {tail}"
        )
        with self.guard() as db:
            return [Message.from_row(dict(row)) for row in db.query(sql, params)]

    def delete_message(self, message_id: int) -> None:
        self.get_message(message_id)
        with self.guard(write=True) as db:
            db.execute("DELETE FROM messages WHERE id = ?", [message_id])

    # -- feedback -------------------------------------------------------------------------------------------

    _UNSET: Any = object()

    def set_feedback(self, message_id: int, rating: int | None = _UNSET, better_answer: str | None = _UNSET) -> None:
        """Record thumbs up (1) / down (-1) / none (None), and or a better answer, for an assistant reply."""
        message = self.get_message(message_id)
        if message.role != "assistant":
            raise NotFoundError(f"Message {message_id} is not a reply of the assistant; feedback is for replies.")
        if rating is not self._UNSET and rating not in (-1, 1, None):
            raise ValueError("rating must be 1, -1 or None")
        stamp = now()
        with self.guard(write=True) as db:
            existing = db.execute("SELECT rating, better_answer FROM feedback WHERE message_id = ?", [message_id])
            row = existing.fetchone()
            values = {
                "rating": row[0] if row else None,
                "better_answer": row[1] if row else None,
            }
            if rating is not self._UNSET:
                values["rating"] = rating
            if better_answer is not self._UNSET:
                values["better_answer"] = better_answer or None
            db.execute(
                "INSERT INTO feedback (message_id, rating, better_answer, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(message_id) DO UPDATE SET rating = excluded.rating, "
                "better_answer = excluded.better_answer, updated_at = excluded.updated_at",
                [message_id, values["rating"], values["better_answer"], stamp, stamp],
            )

    # -- search ---------------------------------------------------------------------------------------------

    def search(self, text: str, limit: int = 20) -> list[SearchHit]:
        """Full-text search (FTS5, BM25 ranking) over every current message (not the superseded ones)."""
        query = fts_query(text)
        if not query:
            return []
        sql = """
            SELECT m.id, m.conversation_id, c.title, m.role, m.created_at,
                   snippet(messages_fts, 0, '[', ']', '…', 12) AS snippet,
                   bm25(messages_fts) AS score
            FROM messages_fts
            JOIN messages m ON m.rowid = messages_fts.rowid
            JOIN conversations c ON c.id = m.conversation_id
            WHERE messages_fts MATCH ? AND m.superseded_by IS NULL
            ORDER BY score LIMIT ?"""
        with self.guard() as db:
            rows = db.execute(sql, [query, limit]).fetchall()
        return [
            SearchHit(
                message_id=r[0],
                conversation_id=r[1],
                conversation_title=r[2],
                role=r[3],
                created_at=r[4],
                snippet=r[5],
                score=round(-float(r[6]), 4),
            )
            for r in rows
        ]

    # -- models ---------------------------------------------------------------------------------------------

    def add_model(self, name: str, path: str, source: str) -> None:
        with self.guard(write=True) as db:
            db.execute(
                "INSERT OR REPLACE INTO models (name, path, source, added_at) VALUES (?, ?, ?, ?)",
                [name, path, source, now()],
            )

    def list_models(self) -> list[dict[str, Any]]:
        with self.guard() as db:
            return [dict(r) for r in db.query("SELECT * FROM models ORDER BY name")]

    def get_model(self, name: str) -> dict[str, Any] | None:
        with self.guard() as db:
            rows = list(db.query("SELECT * FROM models WHERE name = ?", [name]))
        return dict(rows[0]) if rows else None

    def remove_model(self, name: str) -> bool:
        with self.guard(write=True) as db:
            cursor = db.execute("DELETE FROM models WHERE name = ?", [name])
            return cursor.rowcount > 0


def read_only_sentence(path: Path) -> str:
    return (
        f"The data directory {path.parent} is read-only, so nothing can be saved; reading and exporting still work "
        "(`assistant history export`). Make it writable or point ASSISTANT_HOME at a writable copy."
    )


def writable(home: Path, path: Path) -> bool:
    """Whether the store can be written: its directory (SQLite adds -wal and -shm files there) and its file.

    ``os.access`` also answers for root on a read-only file system, where file modes would not.
    """
    if not os.access(home, os.W_OK | os.X_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


def _connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """Open a database without writing a byte, even in a read-only directory.

    ``mode=ro`` still needs the WAL index (-shm), which SQLite cannot create in a read-only directory; then the
    file is opened as immutable. A database closed cleanly has no -wal file and loses nothing that way; a -wal
    left by a crash cannot be read without writing, which is logged.
    """
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False, isolation_level=None)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.Error:
        pass
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size:
        log.warning("%s cannot be read in a read-only directory; the latest changes may be missing", wal)
    try:
        conn = sqlite3.connect(
            f"{uri}&immutable=1", uri=True, timeout=timeout, check_same_thread=False, isolation_level=None
        )
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise explain(exc, path) from exc
    return conn


def open_store(home: Path | None = None, timeout: float = 5.0) -> Store:
    """Open (creating if needed) the store in the private data dir, with SQLite's busy timeout in seconds.

    An existing store that cannot be written is opened read-only (see ``Store.read_only``).
    """
    home = home or data_dir()
    path = db_path(home)
    if home.is_dir() and path.is_file() and not writable(home, path):
        return Store(path, timeout=timeout, read_only=True)
    home = ensure_private_dir(home)
    return Store(path, timeout=timeout)
