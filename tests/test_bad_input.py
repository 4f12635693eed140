"""Bad input through the real CLI: one clear sentence, a non-zero exit, no traceback, and nothing stored is lost."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from storage.db import Store, open_store
from storage.facts import list_facts
from tests.read_only import read_only, read_only_mount_works, run_read_only
from tests.test_cli_chat import ASSISTANT, chat_json, cli_env, ok, one_sentence_error, run_cli
from tests.test_models_cli import EMPTY_GGUF

Snapshot = list[tuple[int, str, list[tuple[str, str]]]]


def seed(store: Store) -> Snapshot:
    """A conversation stored before the bad input arrives."""
    conversation_id = store.create_conversation(model="smollm2")
    store.add_message(conversation_id, "user", "Remember that my cat is called Miso.")
    store.add_message(conversation_id, "assistant", "I will remember Miso.", finish_reason="stop")
    return snapshot(store)


def snapshot(store: Store) -> Snapshot:
    return [
        (c.id, c.title, [(m.role, m.content) for m in store.messages(c.id)])
        for c in sorted(store.list_conversations(), key=lambda c: c.id)
    ]


def assert_intact(home: Path, before: Snapshot, *, new_allowed: bool = False) -> None:
    with open_store(home) as store:
        after = snapshot(store)
    if new_allowed:  # the user's message is stored before the model loads: a new conversation may appear
        after = [c for c in after if c[0] in {b[0] for b in before}]
    assert after == before


def test_empty_message_is_refused(store: Store, home: Path) -> None:
    before = seed(store)
    for done in (run_cli("chat", ""), run_cli("chat", "   "), run_cli("chat", input=b"\n  \n")):
        assert "Nothing to send" in one_sentence_error(done, code=2)
    assert_intact(home, before)


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe\x00\x01binary\x00", b"caf\xe9 au lait", b"text with a NUL\x00 byte", os.urandom(4096)],
    ids=["binary", "latin-1", "nul", "random"],
)
def test_binary_or_invalid_utf8_on_stdin_is_refused(store: Store, home: Path, data: bytes) -> None:
    before = seed(store)
    done = run_cli("chat", input=data)
    assert "not valid UTF-8 text" in one_sentence_error(done, code=2)
    assert_intact(home, before)


def run_bytes(*args: bytes) -> subprocess.CompletedProcess[str]:
    """The real console script with raw bytes for arguments, as a shell passes $'caf\\xe9'."""
    done = subprocess.run([ASSISTANT.encode(), *args], capture_output=True, env=cli_env(), timeout=300)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


@pytest.mark.parametrize(
    "args",
    [
        [b"chat", b"caf\xe9"],
        [b"chat", b"--model", b"\xff", b"Hello?"],
        [b"memory", b"remember", b"my caf\xe9 is round the corner"],
        [b"memory", b"search", b"caf\xe9"],
        [b"memory", b"facts", b"--filter", b"caf\xe9"],
        [b"history", b"search", b"caf\xe9"],
        [b"history", b"list", b"--filter", b"caf\xe9"],
        [b"models", b"add", b"/nowhere/model.gguf", b"--name", b"caf\xe9"],
    ],
    ids=["chat", "chat-model", "remember", "memory-search", "facts", "history-search", "history-list", "models-add"],
)
def test_an_argument_that_is_not_utf8_is_refused(store: Store, home: Path, args: list[bytes]) -> None:
    before = seed(store)
    line = one_sentence_error(run_bytes(*args), code=2)
    assert "not valid UTF-8" in line and ("\\xe9" in line or "\\xff" in line)
    assert_intact(home, before)  # no empty conversation left behind
    with open_store(home) as s:
        assert list_facts(s) == [] and s.list_models() == []


@pytest.mark.model
@pytest.mark.slow
def test_huge_message_is_trimmed_with_a_notice_and_stored_whole(store: Store, home: Path) -> None:
    before = seed(store)
    body = "The quick brown fox jumps over the lazy dog. " * 5000
    text = ("START: please summarise this. " + body)[: 200_000 - 4] + " END"
    assert len(text) == 200_000
    # A smaller window keeps the prompt evaluation short; the trimming is the same at any size.
    done = run_cli("chat", "--json", input=text.encode(), ASSISTANT_CONTEXT_SIZE="1024")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    assert result["reply"].strip()
    # Every notice goes to stderr, not into the reply: the trim notice before it, anything the reply brought after.
    assert result["notice"] and "only its start and end were sent" in result["notice"]
    assert all(sentence in done.stderr for sentence in result["notice"].split(". ")), done.stderr
    with open_store(home) as s:
        user = s.get_message(result["user_message_id"])
    assert user.content == text and user.context_trimmed
    assert_intact(home, before, new_allowed=True)


def _register_fake_model(home: Path, tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / f"{name}.gguf"
    path.write_bytes(content)
    ok("models", "add", str(path), "--name", name)
    return path


def test_missing_model_file(store: Store, home: Path, tmp_path: Path) -> None:
    before = seed(store)
    path = _register_fake_model(home, tmp_path, "gone", EMPTY_GGUF)
    path.unlink()
    line = one_sentence_error(run_cli("chat", "--model", "gone", "Hello?"), code=3)
    assert "does not exist" in line and str(path) in line
    assert_intact(home, before)  # refused before anything was stored


def test_unknown_model_name(store: Store, home: Path) -> None:
    before = seed(store)
    line = one_sentence_error(run_cli("chat", "--model", "no-such-model", "Hello?"), code=5)
    assert "no model called 'no-such-model'" in line
    assert_intact(home, before)


@pytest.mark.parametrize(
    "content",
    [b"GGUF" + os.urandom(2048), os.urandom(2048), EMPTY_GGUF + b"\1"],
    ids=["gguf-garbage", "random", "gguf-unloadable"],
)
def test_corrupt_model_file(store: Store, home: Path, tmp_path: Path, content: bytes) -> None:
    before = seed(store)
    path = _register_fake_model(home, tmp_path, "broken", EMPTY_GGUF)
    path.write_bytes(content)  # corrupted after it was added
    line = one_sentence_error(run_cli("chat", "--model", "broken", "Hello?"), code=3)
    assert str(path) in line
    unloadable = content.startswith(EMPTY_GGUF)
    if unloadable:  # a well-formed header that llama.cpp still refuses
        assert "could not be loaded" in line
    elif content.startswith(b"GGUF"):
        assert "damaged GGUF" in line or "truncated" in line
    else:
        assert "not a GGUF model file" in line
    if not unloadable:  # `models add` refuses such a file outright.
        assert str(path) in one_sentence_error(run_cli("models", "add", str(path)), code=3)
    # Only a file llama.cpp itself refuses is found after the message was stored (kept, as with any failed reply).
    assert_intact(home, before, new_allowed=unloadable)


def test_data_dir_under_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = run_cli("chat", "Hello?", ASSISTANT_HOME=str(blocker / "home"))
    line = one_sentence_error(done, code=4)
    assert "Cannot use the data directory" in line and "ASSISTANT_HOME" in line
    assert blocker.read_text() == "not a directory"


@pytest.mark.skipif(not read_only_mount_works(), reason="root here cannot make a read-only mount (unshare -m)")
def test_read_only_data_dir_is_refused(store: Store, home: Path) -> None:
    before = seed(store)
    store.close()
    with read_only(home):
        line = one_sentence_error(run_read_only(home, "chat", "Hello?"), code=4)
    assert str(home) in line and "read-only" in line and "writable" in line
    assert_intact(home, before)


def test_locked_database_is_refused(store: Store, home: Path) -> None:
    before = seed(store)
    locker = sqlite3.connect(store.path, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        line = one_sentence_error(run_cli("chat", "Hello?", ASSISTANT_DB_TIMEOUT="0.2"), code=4)
        assert "locked" in line
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert_intact(home, before)
    # Once the lock is gone the same command works.
    assert "Nothing to send" in one_sentence_error(run_cli("chat", ""), code=2)


@pytest.mark.model
def test_chat_works_after_refusals(store: Store, home: Path) -> None:
    """A refused message leaves nothing half-done behind: the next turn in the same conversation works."""
    before = seed(store)
    conversation_id = before[0][0]
    one_sentence_error(run_cli("chat", "--conversation", str(conversation_id), input=b"\xff"), code=2)
    result = chat_json("--conversation", str(conversation_id), "What is my cat called?")
    with open_store(home) as s:
        messages = s.messages(conversation_id)
    assert [m.content for m in messages[:2]] == [c for _, c in before[0][2]]
    assert len(messages) == 4 and messages[-1].content == result["reply"]
