"""Forgetting (assistant.forget): a conversation, a message or a fact goes from SQLite, from the full-text index
and from the vector index, and the `forgotten` table records what and when, never the content."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.errors import NotFoundError
from assistant.forget import forget_conversation, forget_fact, forget_message
from storage.db import Store
from storage.embedder import Embedder
from storage.facts import add_fact, list_facts
from storage.forgotten import ForgetRecord, forgotten_ids, list_forgotten
from storage.memory import Memory
from tests.test_cli_chat import ok, run_cli

SECRET = "The spare key is under the blue flowerpot by the shed."


@pytest.fixture
def memory(store: Store, home: Path, embedder: Embedder) -> Iterator[Memory]:
    mem = Memory(store, home, embedder=embedder)
    yield mem
    mem.close()


def vector_ids(memory: Memory) -> set[int]:
    """Every message id that still has a vector in the index."""
    total = memory.index.count()
    if not total:
        return set()
    probe = memory.embedder.embed([SECRET])[0]
    return {mid for mid, _ in memory.index.query(probe, total)}


def seeded(store: Store) -> tuple[int, list[int], int, list[int]]:
    victim = store.create_conversation()
    victim_ids = [
        store.add_message(victim, "user", SECRET),
        store.add_message(victim, "assistant", "I will remember where the spare key is."),
    ]
    store.set_feedback(victim_ids[1], rating=1)
    other = store.create_conversation()
    other_ids = [
        store.add_message(other, "user", "The garage door code changed last week to a new one."),
        store.add_message(other, "user", "My neighbour keeps a second spare key for emergencies."),
    ]
    return victim, victim_ids, other, other_ids


def assert_no_content(store: Store, *texts: str) -> None:
    """The record holds ids and times only: no column could carry what was said."""
    with store.guard() as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(forgotten)")]
        rows = db.execute("SELECT * FROM forgotten").fetchall()
    assert columns == ["id", "kind", "item_id", "conversation_id", "forgotten_at"]
    flat = " ".join(str(value) for row in rows for value in row)
    for text in texts:
        assert text not in flat and text.split()[1] not in flat


def test_forget_a_conversation_everywhere(store: Store, memory: Memory) -> None:
    victim, victim_ids, _, other_ids = seeded(store)
    memory.index_pending()
    assert set(victim_ids) <= vector_ids(memory)

    gone = forget_conversation(store, victim, memory=memory)

    assert gone.kind == "conversation" and gone.id == victim and gone.message_ids == tuple(victim_ids)
    assert gone.vectors_removed
    with pytest.raises(NotFoundError):
        store.get_conversation(victim)
    with store.guard() as db:
        assert db.execute("SELECT count(*) FROM messages WHERE conversation_id = ?", [victim]).fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM feedback").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM vector_tombstones").fetchone()[0] == 0
    assert store.search("flowerpot") == []  # the full-text index followed
    left = vector_ids(memory)
    assert not set(victim_ids) & left and set(other_ids) <= left
    records = list_forgotten(store)
    assert [(r.kind, r.item_id, r.conversation_id) for r in records] == [
        *[("message", mid, victim) for mid in victim_ids],
        ("conversation", victim, victim),
    ]
    assert all(r.forgotten_at[:4].isdigit() and r.forgotten_at.endswith("+00:00") for r in records)
    assert forgotten_ids(store, "message") == set(victim_ids)
    assert_no_content(store, SECRET)


def test_forget_a_message_everywhere(store: Store, memory: Memory) -> None:
    _, (secret, reply), other, _ = seeded(store)
    memory.index_pending()

    gone = forget_message(store, secret, memory=memory)

    assert (gone.kind, gone.id, gone.message_ids, gone.vectors_removed) == ("message", secret, (secret,), True)
    with pytest.raises(NotFoundError):
        store.get_message(secret)
    assert store.get_message(reply).rating == 1  # the rest of the conversation stays
    assert secret not in vector_ids(memory) and reply in vector_ids(memory)
    assert [(r.kind, r.item_id) for r in list_forgotten(store)] == [("message", secret)]
    assert list_forgotten(store, after_id=list_forgotten(store)[-1].id) == []
    assert_no_content(store, SECRET)


def test_without_a_memory_the_vectors_go_on_the_next_index_pass(store: Store, memory: Memory) -> None:
    victim, victim_ids, _, _ = seeded(store)
    memory.index_pending()

    gone = forget_conversation(store, victim)  # e.g. the memory could not be opened

    assert not gone.vectors_removed
    assert set(victim_ids) <= vector_ids(memory)  # lingering...
    assert victim_ids[0] not in {h.message_id for h in memory.search("where is the spare key", k=10)}  # ...unseen
    memory.index_pending()
    assert not set(victim_ids) & vector_ids(memory)
    assert {r.item_id for r in list_forgotten(store, kind="conversation")} == {victim}


def test_forget_a_fact(store: Store) -> None:
    kept = add_fact(store, "My sister Noor has a dachshund called Pepperoni.")
    secret = add_fact(store, "My wifi password is hunter2.")

    gone = forget_fact(store, secret)

    assert (gone.kind, gone.id) == ("fact", secret)
    assert [f.id for f in list_facts(store)] == [kept]
    assert list_forgotten(store) == [
        ForgetRecord(list_forgotten(store)[0].id, "fact", secret, None, list_forgotten(store)[0].forgotten_at)
    ]
    assert_no_content(store, "My wifi password is hunter2.")


def test_forgetting_what_is_not_there_records_nothing(store: Store) -> None:
    for forget, missing in ((forget_conversation, 404), (forget_message, 405), (forget_fact, 406)):
        with pytest.raises(NotFoundError):
            forget(store, missing)
    assert list_forgotten(store) == []


def test_ids_are_never_given_out_again(store: Store) -> None:
    first = store.create_conversation()
    message = store.add_message(first, "user", "one")
    fact = add_fact(store, "A fact to forget.")
    forget_message(store, message)
    forget_fact(store, fact)
    forget_conversation(store, first)

    second = store.create_conversation()
    assert second > first
    assert store.add_message(second, "user", "two") > message
    assert add_fact(store, "A new fact.") > fact


def test_the_cli_forgets_through_the_service(store: Store, home: Path) -> None:
    victim, victim_ids, _, _ = seeded(store)
    fact = add_fact(store, "My locker code is 4471.")
    store.close()
    ok("history", "delete", str(victim), "--yes")
    ok("memory", "forget", str(fact))
    assert run_cli("memory", "forget", str(fact)).returncode == 5
    from storage.db import open_store

    with open_store(home) as reopened:
        kinds = [(r.kind, r.item_id) for r in list_forgotten(reopened)]
    assert kinds == [*[("message", mid) for mid in victim_ids], ("conversation", victim), ("fact", fact)]
