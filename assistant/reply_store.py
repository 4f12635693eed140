"""Writing a reply to the store without ever losing it.

A reply is saved while it streams (every half second) and once more, with its figures, when it ends. Another
program may hold the database meanwhile (a second assistant, a backup tool, `sqlite3` with a transaction open):

* a save while streaming that meets the lock is skipped, and the next one waits longer, so the reply goes on;
* the final write is retried while the lock lasts (each try waits SQLite's busy timeout, then a growing pause);
* if it still cannot be written, the reply is kept in a private file in the data dir (``unsaved/``) and written to
  its row, with the cause, the next time the assistant starts a session or a turn and the database is writable.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from storage.db import Store
from storage.errors import StorageError
from storage.paths import make_private

SAVE_EVERY_S = 0.5
MAX_SAVE_INTERVAL_S = 8.0  # a lock that lasts: try a save while streaming at most this often
RETRY_PAUSES_S = (0.2, 0.5, 1.0)  # pauses between tries of the final write (after each busy timeout)

Blocked = Callable[[int, StorageError], None]


class ReplyWriter:
    """Saves one reply row: partial saves that never stop the reply, a final write that is retried or kept."""

    def __init__(self, store: Store, spool: Path | None, on_blocked: Blocked | None = None) -> None:
        self.store = store
        self.spool = spool
        self.on_blocked = on_blocked  # called after each failed try of the final write (tests release the lock)
        self._interval = SAVE_EVERY_S
        self._next = time.monotonic() + SAVE_EVERY_S
        self.kept: Path | None = None  # the file holding a reply that could not be written

    def save_partial(self, message_id: int, content: str, tokens: int) -> None:
        """Save what was written so far, if it is time; a locked database only postpones it."""
        now = time.monotonic()
        if now < self._next:
            return
        try:
            self.store.update_message(message_id, content=content, completion_tokens=tokens)
        except StorageError:
            self._interval = min(self._interval * 2, MAX_SAVE_INTERVAL_S)
        else:
            self._interval = SAVE_EVERY_S
        self._next = time.monotonic() + self._interval

    def save_final(self, message_id: int, fields: dict[str, Any]) -> StorageError | None:
        """Write the finished reply, retrying while the lock lasts; None once written, else the last error.

        A reply that could not be written is kept in the spool and written by ``write_kept`` later.
        """
        error: StorageError | None = None
        for attempt in range(len(RETRY_PAUSES_S) + 1):
            try:
                self.store.update_message(message_id, **fields)  # a row deleted meanwhile: nothing to write to
                return None
            except StorageError as exc:
                error = exc
                if self.on_blocked is not None:
                    self.on_blocked(attempt, exc)
                if attempt < len(RETRY_PAUSES_S):
                    time.sleep(RETRY_PAUSES_S[attempt])
        self.kept = keep(self.spool, message_id, fields, cause_of(error))
        return error


def cause_of(error: StorageError | None) -> str:
    """Why a reply could not be written, as a phrase for its row."""
    text = str(error or "").strip().rstrip(".")
    if "locked" in text.lower():
        return "the database was locked by another program"
    return f"the database could not be written ({text})" if text else "the database could not be written"


def keep(spool: Path | None, message_id: int, fields: dict[str, Any], cause: str) -> Path | None:
    """Put a reply that could not be written into the spool (a private file); None if that failed too."""
    if spool is None:
        return None
    try:
        spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = spool / f"reply-{message_id}.json"
        partial = path.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"message_id": message_id, "fields": fields, "cause": cause}, fh, ensure_ascii=False)
        make_private(partial)
        partial.replace(path)
        return path
    except OSError:
        return None


def write_kept(store: Store, spool: Path | None) -> int:
    """Write replies kept in the spool to their rows, with the cause; return how many were written.

    Each is removed once written (a row deleted meanwhile takes nothing); a database that is still locked leaves
    them for the next time.
    """
    if spool is None or not spool.is_dir():
        return 0
    written = 0
    for path in sorted(spool.glob("reply-*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            message_id, fields = int(record["message_id"]), dict(record["fields"])
            cause = str(record.get("cause") or "the database could not be written").strip().rstrip(".")
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: left in place for a person to look at, never deleted unread
        kept_note = f"When this reply was finished {cause}; it was written later."
        fields["error"] = " ".join(part for part in (fields.get("error"), kept_note) if part)
        try:
            store.update_message(message_id, **fields)
        except StorageError:
            return written  # still locked: try again next time
        else:
            written += 1
        path.unlink(missing_ok=True)
    return written
