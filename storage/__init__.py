"""Private storage: SQLite (the source of truth) through sqlite-utils, and the vector memory derived from it.

Kept light: importing a record type (the TUI does, for its first frame) must not import sqlite-utils.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from storage.records import Conversation, Message, SearchHit

if TYPE_CHECKING:
    from storage.db import Store, open_store

__all__ = ["Conversation", "Message", "SearchHit", "Store", "open_store"]


def __getattr__(name: str) -> Any:
    if name in ("Store", "open_store"):
        from storage import db

        return getattr(db, name)
    raise AttributeError(f"module 'storage' has no attribute {name!r}")
