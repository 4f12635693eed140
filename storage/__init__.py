"""Private storage: SQLite (the source of truth) through sqlite-utils."""

from storage.db import Store, open_store
from storage.records import Conversation, Feedback, Message, SearchHit

__all__ = ["Conversation", "Feedback", "Message", "SearchHit", "Store", "open_store"]
