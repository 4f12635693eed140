"""Another program holding the database while a reply is written: the reply is never lost.

A real second SQLite connection holds ``BEGIN EXCLUSIVE``. It is released from a hook the reply's writer calls
when its final write meets the lock (not after a sleep), or never, in which case the CLI prints the reply, says in
one sentence why it could not be saved, exits 4, and the reply is written with its cause once the database is
writable again.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import reply_store
from assistant.config import Settings
from assistant.errors import StorageError
from assistant.session import Session
from storage.db import Store
from storage.paths import db_path, unsaved_dir
from tests.fakes import FakeBackend
from tests.test_cli_chat import ASSISTANT, ROOT, cli_env

REPLY = "one two three four five six seven eight"


class Holder:
    """A second program's connection that holds the database with BEGIN EXCLUSIVE until released."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.held = False

    def hold(self) -> None:
        self.conn.execute("BEGIN EXCLUSIVE")
        self.held = True

    def release(self) -> None:
        if self.held:
            self.conn.execute("COMMIT")
            self.held = False

    def close(self) -> None:
        self.release()
        self.conn.close()


@pytest.fixture
def quick_store(home: Path) -> Iterator[Store]:
    """The store with a short busy timeout, so every try against the lock gives up quickly."""
    from storage.db import open_store

    with open_store(home, timeout=0.05) as s:
        yield s


@pytest.fixture
def holder(home: Path, quick_store: Store) -> Iterator[Holder]:
    h = Holder(db_path(home))
    yield h
    h.close()


@pytest.fixture
def session(quick_store: Store, settings: Settings, home: Path) -> Session:
    backend = FakeBackend([REPLY])
    return Session(quick_store, settings, home=home, loader=lambda *a, **k: backend, use_memory=False)


def test_the_final_write_is_retried_until_the_lock_ends(
    session: Session, quick_store: Store, holder: Holder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reply_store, "SAVE_EVERY_S", 0.0)  # a save on every chunk: each meets the lock
    turn = session.start_turn("count to eight")
    released = threading.Event()
    tries: list[int] = []

    def on_blocked(attempt: int, exc: StorageError) -> None:
        tries.append(attempt)
        assert "locked" in str(exc)
        # The other program finishes its transaction from its own thread; the next try waits for it.
        threading.Thread(target=lambda: (holder.release(), released.set())).start()
        released.wait()

    turn.on_save_blocked = on_blocked
    chunks = turn.stream()
    shown = [next(chunks).text]
    holder.hold()  # from here on every write of this reply meets the lock
    shown += [chunk.text for chunk in chunks]  # the saves while streaming do not stop the reply
    assert "".join(shown) == REPLY
    assert tries == [0]  # the first final write met the lock, the second went through
    assert turn.result is not None and turn.result.saved and turn.result.notice is None
    stored = quick_store.get_message(turn.message_id)  # type: ignore[arg-type]
    assert stored.content == REPLY and stored.complete and stored.finish_reason == "stop" and stored.error is None


def test_a_reply_that_cannot_be_written_is_kept_and_written_later_with_its_cause(
    session: Session, quick_store: Store, holder: Holder, settings: Settings, home: Path
) -> None:
    turn = session.start_turn("count to eight")
    chunks = turn.stream()
    shown = [next(chunks).text]
    holder.hold()
    with pytest.raises(StorageError) as caught:
        for chunk in chunks:
            shown.append(chunk.text)
    assert "".join(shown) == REPLY  # every word was shown before the error
    sentence = str(caught.value)
    assert sentence.count(". ") == 0 and "database was locked by another program" in sentence
    assert turn.result is not None and not turn.result.saved and turn.result.reply == REPLY
    (kept,) = unsaved_dir(home).glob("reply-*.json")
    assert kept.stat().st_mode & 0o777 == 0o600
    holder.release()
    stored = quick_store.get_message(turn.message_id)  # type: ignore[arg-type]
    assert stored.content == "" and not stored.complete  # what the lock let through
    # The next session (or turn) writes it, with the real cause on the row.
    Session(quick_store, settings, home=home, loader=lambda *a, **k: FakeBackend(), use_memory=False)
    stored = quick_store.get_message(turn.message_id)  # type: ignore[arg-type]
    assert stored.content == REPLY and stored.complete and stored.finish_reason == "stop"
    assert stored.error is not None and "locked by another program" in stored.error
    assert not kept.exists()


def test_the_cli_prints_the_reply_says_why_it_was_not_saved_and_exits_4(home: Path, tmp_path: Path) -> None:
    """The real CLI on the real model. Its stdout is a pipe filled to the brim beforehand, so the CLI blocks on the
    reply's first words until the test reads them: the lock is taken while the reply is being written."""
    from storage.db import open_store

    open_store(home).close()  # the database exists, so this test can watch it from the start
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    os.set_blocking(write_end, False)
    filler = 0
    try:
        while True:
            filler += os.write(write_end, b"#" * 512)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    errors = (tmp_path / "stderr").open("w+b")
    proc = subprocess.Popen(
        [ASSISTANT, "chat", "--no-memory", "Name three colours."],
        stdin=subprocess.DEVNULL,
        stdout=write_end,
        stderr=errors,
        env=cli_env(ASSISTANT_DB_TIMEOUT="0.2"),
        cwd=ROOT,
    )
    os.close(write_end)
    holder: Holder | None = None
    try:
        reader = sqlite3.connect(db_path(home), timeout=30)
        # Wait (for a condition, not a time) until the reply's row exists; the full pipe stops it there.
        while proc.poll() is None:
            try:
                if reader.execute("SELECT 1 FROM messages WHERE role = 'assistant'").fetchone():
                    break
            except sqlite3.OperationalError:  # the database is still being created
                pass
            time.sleep(0.01)  # polling a condition; the machine has two cores to share with the CLI
        reader.close()
        assert proc.poll() is None, "the CLI ended before its reply started"
        holder = Holder(db_path(home))
        holder.hold()
        out = b""
        while chunk := os.read(read_end, 65536):
            out += chunk
        proc.wait()
    finally:
        os.close(read_end)
        if proc.poll() is None:
            proc.kill()
    errors.seek(0)
    err = errors.read().decode()
    printed = out[filler:].decode()
    assert proc.returncode == 4, err
    assert "Traceback" not in err
    assert "could not be saved because the database was locked by another program" in err
    assert printed.strip()  # the reply was printed anyway
    assert holder is not None
    holder.release()
    holder.close()
    # Once the database is writable, the next start writes the kept reply with its cause.
    with open_store(home) as store:
        Session(store, Settings(), home=home, loader=lambda *a, **k: FakeBackend(), use_memory=False)
        (conversation,) = store.list_conversations()
        user, reply = store.messages(conversation.id)
    assert user.content == "Name three colours."
    assert reply.content.strip() == printed.strip() and reply.complete
    assert reply.error is not None and "locked by another program" in reply.error
