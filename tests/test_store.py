"""The SQLite store: schema, messages, feedback, search, and errors that speak to the user."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from assistant.errors import NotFoundError, StorageError
from storage.db import Store, fts_query, open_store
from storage.migrations import MIGRATIONS


def test_migrations_are_recorded_and_not_reapplied(home: Path) -> None:
    with open_store() as store:
        names = [r["name"] for r in store.db["_migrations"].rows]
        assert names == [name for name, _ in MIGRATIONS]
    with open_store() as store:  # reopening applies nothing twice
        assert len(list(store.db["_migrations"].rows)) == len(MIGRATIONS)
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_messages_keep_every_field_and_title_the_conversation(store: Store) -> None:
    cid = store.create_conversation()
    store.add_message(cid, "user", "  How do   I bake bread at home?  ")
    mid = store.add_message(
        cid, "assistant", "Knead, rise, bake.", model="m", prompt_tokens=10, completion_tokens=5,
        ttft_ms=12.5, tokens_per_s=80.0, duration_ms=70.0, finish_reason="stop", complete=1,
    )
    conv = store.get_conversation(cid)
    assert conv.title == "How do I bake bread at home?"
    assert conv.message_count == 2
    reply = store.get_message(mid)
    assert (reply.prompt_tokens, reply.completion_tokens, reply.ttft_ms, reply.finish_reason) == (10, 5, 12.5, "stop")
    assert reply.complete is True


def test_feedback_rating_and_better_answer(store: Store) -> None:
    cid = store.create_conversation()
    user = store.add_message(cid, "user", "q")
    reply = store.add_message(cid, "assistant", "a")
    store.set_feedback(reply, rating=1)
    store.set_feedback(reply, better_answer="A much better answer.")
    got = store.get_message(reply)
    assert got.rating == 1 and got.better_answer == "A much better answer."
    store.set_feedback(reply, rating=-1)
    assert store.get_message(reply).rating == -1
    assert store.get_message(reply).better_answer == "A much better answer."
    with pytest.raises(NotFoundError):
        store.set_feedback(user, rating=1)


def test_search_ranks_and_survives_punctuation(store: Store) -> None:
    a = store.create_conversation()
    store.add_message(a, "user", "My sister Ingrid lives in Trondheim.")
    b = store.create_conversation()
    store.add_message(b, "user", "The weather is nice today.")
    hits = store.search("Trondheim")
    assert [h.conversation_id for h in hits] == [a]
    assert "[Trondheim]" in hits[0].snippet
    assert store.search('"unbalanced AND (') == []
    assert store.search("   ") == []
    assert fts_query('a "b" c') == '"a" "b" "c"'


def test_delete_conversation_cascades_to_messages_feedback_and_search(store: Store) -> None:
    cid = store.create_conversation()
    store.add_message(cid, "user", "remember the zebra")
    reply = store.add_message(cid, "assistant", "zebra noted")
    store.set_feedback(reply, rating=1)
    store.delete_conversation(cid)
    assert store.search("zebra") == []
    assert store.db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM feedback").fetchone()[0] == 0
    with pytest.raises(NotFoundError):
        store.get_conversation(cid)


def test_filter_conversations_by_title(store: Store) -> None:
    for title in ("Bread recipes", "Tax questions", "100%_done"):
        store.create_conversation(title=title)
    assert [c.title for c in store.list_conversations("bread")] == ["Bread recipes"]
    assert [c.title for c in store.list_conversations("%_")] == ["100%_done"]


def test_a_locked_database_is_one_sentence_and_loses_nothing(home: Path) -> None:
    with open_store() as store:
        cid = store.create_conversation()
        store.add_message(cid, "user", "keep me")
    blocker = sqlite3.connect(home / "assistant.db")
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with open_store(timeout=0.1) as store, pytest.raises(StorageError, match="locked"):
            store.add_message(cid, "user", "blocked")
    except StorageError as exc:  # opening itself may be what waits on the lock
        assert "locked" in str(exc)
    finally:
        blocker.rollback()
        blocker.close()
    with open_store() as store:
        assert [m.content for m in store.messages(cid)] == ["keep me"]


def test_a_corrupt_database_is_one_sentence(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "assistant.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="damaged"):
        open_store()
