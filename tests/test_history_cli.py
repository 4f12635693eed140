"""`assistant history` through the real console script (subprocess) on a real SQLite file, and the real model."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.errors import StorageError
from assistant.session import Session
from storage.db import Store, open_store
from storage.facts import add_fact
from storage.transfer import export_json
from tests.read_only import read_only, read_only_mount_works, run_read_only
from tests.test_cli_chat import one_sentence_error
from tests.test_transfer import MALFORMED, comparable, seed, snapshot

ROOT = Path(__file__).resolve().parents[1]
ASSISTANT = str(Path(sys.executable).parent / "assistant")
DATA = Path(__file__).parent / "data"


def run(*args: str, input: bytes | None = None, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    if home is not None:
        env["ASSISTANT_HOME"] = str(home)
    done = subprocess.run(
        [ASSISTANT, "history", *args],
        input=input if input is not None else b"",
        capture_output=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    )


def ok(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = run(*args, **kwargs)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


@pytest.mark.model
@pytest.mark.slow
def test_end_to_end_real_model_round_trip(real_session: Session, store: Store, tmp_path: Path) -> None:
    turn = real_session.start_turn("Name one colour of the sky.")
    reply = "".join(chunk.text for chunk in turn.stream())
    assert reply.strip() and turn.result is not None
    store.set_feedback(turn.result.message_id, rating=1, better_answer="Blue.")
    # A second reply stopped after its first chunk: stored incomplete.
    stop = threading.Event()
    second = real_session.start_turn("And at sunset?", conversation_id=turn.conversation_id)
    for _ in second.stream(stop):
        stop.set()
    cid = turn.conversation_id

    listed = json.loads(ok("list", "--json").stdout)
    assert [(c["id"], c["message_count"]) for c in listed] == [(cid, 4)]
    assert listed[0]["title"] == "Name one colour of the sky."

    out = tmp_path / "export.json"
    ok("export", str(cid), "--format", "json", "--output", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    exported = json.loads(out.read_text(encoding="utf-8"))
    messages = exported["conversations"][0]["messages"]
    assert messages[1]["content"] == reply and messages[1]["completion_tokens"] > 0
    assert messages[1]["ttft_ms"] is not None and messages[1]["finish_reason"] in ("stop", "length")
    assert messages[1]["rating"] == 1 and messages[1]["better_answer"] == "Blue."
    assert messages[3]["complete"] is False and messages[3]["finish_reason"] == "cancelled"

    fresh = tmp_path / "fresh-home"
    imported = json.loads(ok("import", str(out), "--json", home=fresh).stdout)
    assert (imported["format"], imported["conversations"], imported["messages"]) == ("json", 1, 4)
    again = json.loads(ok("export", "--format", "json", home=fresh).stdout)
    assert comparable(again) == comparable(exported)
    with open_store(fresh) as other:
        [conversation] = other.list_conversations()
        assert conversation.source == "import:json"
        for before, after in zip(store.messages(cid), other.messages(conversation.id), strict=True):
            assert {**before.to_dict(), "id": 0, "conversation_id": 0} == {
                **after.to_dict(),
                "id": 0,
                "conversation_id": 0,
            }

    markdown = ok("export", str(cid)).stdout
    assert "Name one colour of the sky." in markdown and reply.strip() in markdown
    assert "rated good" in markdown and "Incomplete reply (cancelled)" in markdown


def test_import_minimal_and_chatgpt_then_list(store: Store) -> None:
    done = ok("import", str(DATA / "minimal.json"))
    assert "Imported 2 conversations (4 messages)" in done.stderr and "minimal JSON" in done.stderr
    counts = json.loads(ok("import", "-", "--json", input=(DATA / "chatgpt_conversations.json").read_bytes()).stdout)
    assert (counts["format"], counts["conversations"], counts["messages"], counts["skipped"]) == ("chatgpt", 2, 6, 1)

    listed = json.loads(ok("list", "--json").stdout)
    # newest first by last activity: the minimal ones are from May 2026, ChatGPT's from January
    assert [c["title"] for c in listed] == [
        "A quick pancake recipe, please",
        "Lisbon trip",
        "Translate 'good morning' to Portuguese",
        "Sourdough starter",
    ]
    assert {c["source"] for c in listed} == {"import:minimal", "import:chatgpt"}
    assert [c["title"] for c in json.loads(ok("list", "--json", "--limit", "1").stdout)] == [listed[0]["title"]]
    assert [c["title"] for c in json.loads(ok("list", "--json", "-f", "sourdough").stdout)] == ["Sourdough starter"]
    table = ok("list").stdout
    assert "Lisbon trip" in table and "messages" in table


MALFORMED_CLI = MALFORMED[::2] + [m for m in MALFORMED[1::2] if "conversation 3" in m[1]]


@pytest.mark.parametrize(("raw", "expected"), MALFORMED_CLI, ids=[m[1][:40] for m in MALFORMED_CLI])
def test_cli_refuses_malformed_file(store: Store, tmp_path: Path, raw: bytes, expected: str) -> None:
    seed(store)
    before = snapshot(store)
    bad = tmp_path / "bad.json"
    bad.write_bytes(raw)
    done = run("import", str(bad))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"Error: Cannot import {bad}: ")
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert snapshot(store) == before


def test_import_missing_file(store: Store) -> None:
    done = run("import", "no-such-file.json")
    assert done.returncode != 0 and done.stderr == "Error: Cannot import no-such-file.json: there is no such file.\n"


def test_search_then_delete(store: Store) -> None:
    cid = seed(store)
    other = store.create_conversation("Unrelated")
    store.add_message(other, "user", "Tell me about sourdough bread.")

    hits = json.loads(ok("search", "Portugal", "--json").stdout)
    assert [(h["conversation_id"], h["role"]) for h in hits] == [(cid, "user")]
    assert "[Portugal]" in hits[0]["snippet"]
    assert "[Portugal]" in ok("search", "Portugal").stdout
    assert "Nothing matches" in ok("search", "zebra").stderr

    refused = run("delete", str(cid))  # stdin is not a terminal and no --yes
    assert refused.returncode == 2 and "pass --yes" in refused.stderr and refused.stderr.count("\n") == 1
    assert store.get_conversation(cid)

    assert json.loads(ok("delete", str(cid), "--yes", "--json").stdout) == {
        "deleted": cid,
        "messages": 4,
        "adapters_off": [],
    }
    assert [c["id"] for c in json.loads(ok("list", "--json").stdout)] == [other]
    assert json.loads(ok("search", "Portugal", "--json").stdout) == []
    assert json.loads(ok("search", "Lisbon", "--json").stdout) == []  # the reply, and the better answer's message
    assert store.db.execute("SELECT count(*) FROM feedback").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM messages").fetchone()[0] == 1

    missing = run("delete", str(cid), "--yes")
    assert missing.returncode == 5 and f"There is no conversation {cid}" in missing.stderr


def test_delete_asks_on_a_terminal(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.cli import history

    cid = seed(store)
    monkeypatch.setattr(history, "stdin_is_terminal", lambda: True)
    runner = CliRunner()
    declined = runner.invoke(cli, ["history", "delete", str(cid)], input="n\n")
    assert declined.exit_code == 1 and "Nothing was deleted." in declined.output
    assert store.get_conversation(cid)
    accepted = runner.invoke(cli, ["history", "delete", str(cid)], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert store.list_conversations() == []


def test_show_marks_incomplete_replies_and_feedback(store: Store) -> None:
    cid = seed(store)
    text = ok("show", str(cid)).stdout
    assert "What is the capital of Portugal?" in text
    assert "[rated good]" in text and "Better answer: Lisbon, on the Tagus." in text
    assert "[rated bad]" in text and "[incomplete reply (The model failed while replying (boom)" in text
    data = json.loads(ok("show", str(cid), "--json").stdout)
    assert data["id"] == cid and [m["role"] for m in data["messages"]] == ["user", "assistant"] * 2
    assert data["messages"][1]["ttft_ms"] == 120.5 and data["messages"][3]["complete"] is False
    missing = run("show", "999")
    assert missing.returncode == 5 and missing.stderr.startswith("Error: There is no conversation 999")


def test_export_all_markdown_to_private_file(store: Store, tmp_path: Path) -> None:
    seed(store)
    store.add_message(store.create_conversation(), "user", "Second conversation text")
    out = tmp_path / "all.md"
    out.write_text("old contents")
    out.chmod(0o644)
    ok("export", "--output", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text(encoding="utf-8")
    assert "What is the capital of Portugal?" in text and "Second conversation text" in text and "old" not in text
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    missing = run("export", "42")
    assert missing.returncode == 5 and missing.stdout == ""


def test_titles_print_as_text_not_markup(store: Store) -> None:
    cid = store.create_conversation("[bold]brackets[/bold] and [/oops]")
    store.add_message(cid, "user", "a [/oops] message")
    assert "[bold]brackets[/bold] and [/oops]" in ok("list").stdout
    assert "[/oops]" in ok("search", "message").stdout
    assert "a [/oops] message" in ok("show", str(cid)).stdout


def test_export_of_empty_history(store: Store) -> None:
    done = ok("export", "--format", "json")
    assert json.loads(done.stdout)["conversations"] == []
    assert "no conversations to export" in done.stderr


# -- a data dir that cannot be written ---------------------------------------------------------------------------


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


needs_read_only = pytest.mark.skipif(
    not read_only_mount_works(), reason="root here cannot make a read-only mount (unshare -m)"
)


@needs_read_only
def test_a_read_only_data_dir_can_still_be_read_and_exported(store: Store, home: Path, tmp_path: Path) -> None:
    ids = [seed(store)]
    add_fact(store, "I keep bees on the roof.")
    expected = comparable(json.loads(export_json(store)))
    store.close()
    before = _digest(home / "assistant.db")
    markdown, copy = tmp_path / "all.md", tmp_path / "all.json"
    with read_only(home):
        listed = run_read_only(home, "history", "list", "--json")
        shown = run_read_only(home, "history", "show", str(ids[0]), "--json")
        found = run_read_only(home, "history", "search", "Portugal", "--json")
        exported = run_read_only(home, "history", "export", "--format", "json", "-o", str(copy))
        as_text = run_read_only(home, "history", "export", "-o", str(markdown))
        facts = run_read_only(home, "memory", "facts", "--json")
    for done in (listed, shown, found, exported, as_text, facts):
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert {c["id"] for c in json.loads(listed.stdout)} == set(ids)
    assert json.loads(shown.stdout)["id"] == ids[0]
    assert json.loads(found.stdout)
    assert [f["text"] for f in json.loads(facts.stdout)] == ["I keep bees on the roof."]
    assert markdown.read_text().strip()
    # The JSON export is a complete copy: imported into a fresh data dir it gives back every conversation.
    fresh = tmp_path / "fresh"
    ok("import", str(copy), home=fresh)
    assert comparable(json.loads(copy.read_text())) == expected
    with open_store(fresh) as restored:
        assert comparable(json.loads(export_json(restored))) == expected
    assert _digest(home / "assistant.db") == before  # not a byte written
    assert not (home / "assistant.db-wal").exists()


@needs_read_only
@pytest.mark.parametrize(
    "args",
    [
        ("chat", "Hello?"),
        ("memory", "remember", "I like figs."),
        ("history", "delete", "1", "--yes"),
        ("history", "import", str(DATA / "minimal.json")),
    ],
    ids=["chat", "remember", "delete", "import"],
)
def test_a_read_only_data_dir_refuses_writes_in_one_sentence(store: Store, home: Path, args: tuple[str, ...]) -> None:
    seed(store)
    expected = snapshot(store)
    store.close()
    before = _digest(home / "assistant.db")
    with read_only(home):
        done = run_read_only(home, *args)
    line = one_sentence_error(done, code=4)
    assert str(home) in line and "read-only" in line and "export" in line
    assert _digest(home / "assistant.db") == before
    with open_store(home) as after:
        assert snapshot(after) == expected


@needs_read_only
def test_a_read_only_database_that_needs_an_upgrade_says_so(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage import migrations

    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:2])
        with open_store(home) as old:
            old.create_conversation("kept")
    with read_only(home):
        line = one_sentence_error(run_read_only(home, "history", "list"), code=4)
    assert "needs an upgrade" in line and "ASSISTANT_HOME" in line
    with open_store(home) as upgraded:  # writable again: the upgrade runs and the data is there
        assert [c.title for c in upgraded.list_conversations()] == ["kept"]


def test_a_store_opened_read_only_reads_and_refuses_writes(store: Store, home: Path) -> None:
    ids = [seed(store)]
    store.close()
    with Store(home / "assistant.db", read_only=True) as frozen:
        assert {c.id for c in frozen.list_conversations()} == set(ids)
        with pytest.raises(StorageError, match="read-only"):
            frozen.create_conversation("new")
        with pytest.raises(StorageError, match="read-only"):
            frozen.delete_conversation(ids[0])
    with open_store(home) as reopened:
        assert {c.id for c in reopened.list_conversations()} == set(ids)
