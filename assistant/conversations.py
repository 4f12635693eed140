"""Conversations as a front end reads and changes them: list, open, rename, delete (through
``assistant.forget``), and full-text search over every message."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.db import Store
    from storage.memory import Memory
    from storage.records import Conversation, Message, SearchHit


def list_conversations(store: Store, filter_text: str = "", limit: int | None = None) -> list[Conversation]:
    """Conversations, most recently active first; ``filter_text`` keeps those whose title holds it."""
    return store.list_conversations(filter_text, limit=limit)


def title(store: Store, conversation_id: int) -> str:
    return store.get_conversation(conversation_id).title


def rename(store: Store, conversation_id: int, new_title: str) -> None:
    store.rename_conversation(conversation_id, new_title)


def messages(store: Store, conversation_id: int) -> list[Message]:
    """The conversation as it stands: replaced replies and edited messages are left out."""
    return store.messages(conversation_id)


def delete(store: Store, conversation_id: int, memory: Memory | None = None) -> str | None:
    """Delete a conversation and its messages from the database and the index; the sentence to show when a
    learned adapter that knew it was turned off."""
    from assistant.forget import forget_conversation

    return forget_conversation(store, conversation_id, memory=memory).notice


def search(store: Store, text: str, limit: int = 20) -> list[SearchHit]:
    """Full-text search over every message (SQLite FTS5), best first."""
    return store.search(text, limit)
