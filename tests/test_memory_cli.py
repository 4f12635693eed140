"""Memory through the real console script: real SQLite, real embedder, real chromadb directory, the bundled model."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.db import Store, open_store
from storage.facts import recalls_for
from tests.test_cli_chat import TURN_FIELDS, run_cli


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedder's ONNX export, made once per run (each test's data dir would otherwise export it again)."""
    from storage.embedder import ONNX_NAME, Embedder

    models = tmp_path_factory.mktemp("embedder-models")
    Embedder(models_dir=models, engine="onnx").load()
    return models / ONNX_NAME


@pytest.fixture
def memory_home(home: Path, onnx_cache: Path) -> Iterator[Path]:
    (home / "models").mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copy(onnx_cache, home / "models" / onnx_cache.name)
    yield home


def seed(home: Path, *texts: str) -> list[int]:
    """One earlier conversation per text (a user message and a short reply); returns the conversation ids."""
    ids = []
    with open_store(home) as store:
        for text in texts:
            conversation_id = store.create_conversation()
            store.add_message(conversation_id, "user", text, created_at="2026-11-02T09:30:00.000+00:00")
            store.add_message(conversation_id, "assistant", "Noted, thanks for telling me.")
            ids.append(conversation_id)
    return ids


def ok(*args: str, input: bytes | None = None) -> str:
    done = run_cli(*args, input=input)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_chat_recalls_an_earlier_conversation_and_no_memory_turns_it_off(memory_home: Path) -> None:
    first = json.loads(ok("chat", "--json", "My cat is called Miso and she loves sardines."))
    second = json.loads(ok("chat", "--json", "What does my cat love to eat?"))
    assert TURN_FIELDS <= set(second)
    recalled = {m["message_id"]: m for m in second["memories"]}
    assert first["user_message_id"] in recalled
    memo = recalled[first["user_message_id"]]
    assert memo["conversation_id"] == first["conversation_id"] and "sardines" in memo["text"]
    assert set(memo) == {"message_id", "conversation_id", "text", "score"}
    assert all(m["conversation_id"] != second["conversation_id"] for m in second["memories"])
    with open_store(memory_home) as store:
        used = {r.memory_message_id for r in recalls_for(store, second["message_id"])}
    assert first["user_message_id"] in used

    off = json.loads(ok("chat", "--json", "--no-memory", "What does my cat love to eat?"))
    assert off["memories"] == [] and off["facts"] == []


def test_a_chat_leaves_its_messages_for_the_next_call_to_index_before_it_recalls(memory_home: Path) -> None:
    first = json.loads(ok("chat", "--json", "My cat is called Miso and she loves sardines."))
    assert not (memory_home / "memory").exists()  # a new data dir has nothing to recall: no index was opened
    assert json.loads(ok("memory", "status", "--json"))["pending"] == 2  # the exit did not wait for indexing
    second = json.loads(ok("chat", "--json", "What does my cat love to eat?"))
    assert first["user_message_id"] in {m["message_id"] for m in second["memories"]}
    status = json.loads(ok("memory", "status", "--json"))
    assert status["indexed"] == 2 and status["pending"] == 2  # the first call's, indexed before the second recalled
    hits = json.loads(ok("memory", "search", "--json", "--mode", "vector", "--k", "10", "what does my cat eat"))
    assert second["user_message_id"] in {h["message_id"] for h in hits}  # the search indexed the rest first
    assert json.loads(ok("memory", "status", "--json"))["pending"] == 0


def test_facts_remember_list_use_and_forget(memory_home: Path) -> None:
    fact = json.loads(ok("memory", "remember", "--json", "I", "am", "vegetarian."))
    assert fact["text"] == "I am vegetarian."
    turn = json.loads(ok("chat", "--json", "/remember My locker number is 42"))
    assert turn["model"] == "assistant" and turn["finish_reason"] == "stop" and "locker" in turn["reply"]
    listed = json.loads(ok("memory", "facts", "--json"))
    assert [f["text"] for f in listed] == ["My locker number is 42", "I am vegetarian."]
    reply = json.loads(ok("chat", "--json", "What should I cook tonight?"))
    assert {f["text"] for f in reply["facts"]} == {"My locker number is 42", "I am vegetarian."}
    ok("memory", "forget", str(fact["id"]))
    assert [f["text"] for f in json.loads(ok("memory", "facts", "--json"))] == ["My locker number is 42"]
    again = run_cli("memory", "forget", str(fact["id"]))
    assert again.returncode != 0 and f"no fact {fact['id']}" in again.stderr and "Traceback" not in again.stderr


def test_search_json_and_jsonl_batch(memory_home: Path) -> None:
    seed(memory_home, "My sister Ana lives in Lisbon.", "The boiler service is due in March.")
    assert json.loads(ok("memory", "reindex", "--json")) == {"indexed": 4}
    hits = json.loads(ok("memory", "search", "--json", "--k", "3", "where does my sister live"))
    assert hits[0]["text"] == "My sister Ana lives in Lisbon."
    assert set(hits[0]) == {"message_id", "conversation_id", "role", "text", "score", "created_at"}
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)

    lines = b'{"query": "Ana in Lisbon"}\n\n{"query": "boiler", "k": 1}\n'
    out = [json.loads(line) for line in ok("memory", "search", "-", input=lines).splitlines()]
    assert [o["query"] for o in out] == ["Ana in Lisbon", "boiler"]
    assert out[0]["results"][0]["text"] == "My sister Ana lives in Lisbon."
    assert len(out[1]["results"]) == 1 and "boiler" in out[1]["results"][0]["text"]

    bad = run_cli("memory", "search", "-", input=b'{"query": "fine"}\n{"q": 1}\n')
    assert bad.returncode != 0 and bad.stdout == ""
    assert "Line 2" in bad.stderr and "Traceback" not in bad.stderr


def test_history_delete_removes_it_from_memory_search(memory_home: Path) -> None:
    keep, gone = seed(memory_home, "Our wifi password hint is the blue teapot.", "The wifi router is in the attic.")
    ok("memory", "reindex")
    hits = json.loads(ok("memory", "search", "--json", "wifi"))
    assert {h["conversation_id"] for h in hits} == {keep, gone}
    ok("history", "delete", "--yes", str(gone))
    hits = json.loads(ok("memory", "search", "--json", "--mode", "vector", "wifi router attic"))
    assert hits and all(h["conversation_id"] == keep for h in hits)
    with open_store(memory_home) as store:
        assert tombstones(store) == 0  # the vectors went with it, not on a later pass


def tombstones(store: Store) -> int:
    with store.guard() as db:
        return int(db.execute("SELECT count(*) FROM vector_tombstones").fetchone()[0])


def test_reindex_after_the_index_directory_is_deleted(memory_home: Path) -> None:
    seed(memory_home, "The spare key is under the red flowerpot.")
    ok("memory", "reindex")
    shutil.rmtree(memory_home / "memory")
    assert json.loads(ok("memory", "reindex", "--json")) == {"indexed": 2}
    status = json.loads(ok("memory", "status", "--json"))
    assert status["indexed"] == 2 and status["pending"] == 0 and status["index_bytes"] > 0
    hits = json.loads(ok("memory", "search", "--json", "--mode", "vector", "where is the spare key"))
    assert hits[0]["text"] == "The spare key is under the red flowerpot."
