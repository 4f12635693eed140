"""`assistant chat` through the real console script (subprocess), the real bundled model and a real SQLite file."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from storage.db import open_store

ROOT = Path(__file__).resolve().parents[1]
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)  # Linux
ASSISTANT = str(Path(sys.executable).parent / "assistant")
TURN_FIELDS = {
    "conversation_id",
    "message_id",
    "user_message_id",
    "reply",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "ttft_ms",
    "tokens_per_s",
    "finish_reason",
    "notice",
}


def cli_env(**extra: str | None) -> dict[str, str]:
    """The test's environment (ASSISTANT_HOME, seed, ... from conftest) with changes; None removes a variable."""
    env = {**os.environ, "COLUMNS": "200"}
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_cli(
    *args: str, input: bytes | None = None, prefix: list[str] | None = None, **env: str | None
) -> subprocess.CompletedProcess[str]:
    """Run the real `assistant` console script; stdout and stderr decoded as text."""
    done = subprocess.run(
        [*(prefix or []), ASSISTANT, *args],
        input=input if input is not None else b"",
        capture_output=True,
        env=cli_env(**env),
        cwd=ROOT,
        timeout=300,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    )


def ok(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = run_cli(*args, **kwargs)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def chat_json(*args: str, **kwargs: Any) -> dict[str, Any]:
    done = ok("chat", "--json", *args, **kwargs)
    result = json.loads(done.stdout)  # the whole of stdout is one JSON object
    assert isinstance(result, dict)
    return result


def one_sentence_error(done: subprocess.CompletedProcess[str], code: int | None = None) -> str:
    """Assert a refusal: non-zero exit, one 'Error: ...' line on stderr, no traceback; return the line."""
    assert done.returncode != 0, done.stdout
    if code is not None:
        assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


@pytest.mark.model
@pytest.mark.slow
def test_chat_json_is_stored_and_conversations_continue(home: Path) -> None:
    first = chat_json("Name one colour of the sky.")
    assert TURN_FIELDS <= set(first)
    assert first["reply"].strip()
    assert first["model"] == "smollm2"
    assert first["completion_tokens"] > 0 and first["prompt_tokens"] > 0
    assert first["ttft_ms"] > 0
    assert first["finish_reason"] in ("stop", "length")
    assert first["notice"] is None

    with open_store(home) as store:
        messages = store.messages(first["conversation_id"])
    assert [(m.role, m.content) for m in messages] == [
        ("user", "Name one colour of the sky."),
        ("assistant", first["reply"]),
    ]
    assert messages[1].id == first["message_id"] and messages[0].id == first["user_message_id"]
    assert messages[1].complete and messages[1].completion_tokens == first["completion_tokens"]

    second = chat_json("--conversation", str(first["conversation_id"]), "And at sunset?")
    assert second["conversation_id"] == first["conversation_id"]
    assert second["prompt_tokens"] > first["prompt_tokens"]  # the history went into the prompt

    third = chat_json("--continue", "Thanks!")
    assert third["conversation_id"] == first["conversation_id"]
    with open_store(home) as store:
        messages = store.messages(first["conversation_id"])
        assert len(store.list_conversations()) == 1
    assert len(messages) == 6
    assert [m.content for m in messages if m.role == "user"] == [
        "Name one colour of the sky.",
        "And at sunset?",
        "Thanks!",
    ]

    # The default is a new conversation each call.
    fresh = chat_json("Hello.")
    assert fresh["conversation_id"] != first["conversation_id"]


@pytest.mark.model
def test_chat_streams_plain_text_to_stdout(home: Path) -> None:
    done = ok("chat", "Say hello.")
    with open_store(home) as store:
        (conversation,) = store.list_conversations()
        reply = store.messages(conversation.id)[-1]
    assert reply.role == "assistant" and reply.content.strip()
    assert done.stdout.rstrip("\n") == reply.content.rstrip("\n")
    assert done.stderr == ""


@pytest.mark.model
def test_chat_reads_piped_stdin(home: Path) -> None:
    result = chat_json(input=b"What is two plus two?\n")
    assert result["reply"].strip()
    with open_store(home) as store:
        user = store.get_message(result["user_message_id"])
    assert user.content == "What is two plus two?"  # echo's newline dropped


def test_conflicting_conversation_options_are_refused(home: Path) -> None:
    done = run_cli("chat", "--new", "--continue", "hi")
    assert "Choose one of" in one_sentence_error(done, code=2)


def test_unknown_conversation_is_refused(home: Path) -> None:
    done = run_cli("chat", "--conversation", "999", "hi")
    assert "no conversation 999" in one_sentence_error(done, code=5)


def blocked_writing_a_pipe(pid: int) -> bool:
    """The process's main thread is asleep in a write to a full pipe (Linux: /proc/PID/wchan)."""
    try:
        return "pipe_write" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="needs Linux's /proc/PID/wchan")
def test_ctrl_c_keeps_the_partial_reply_and_exits_130(home: Path) -> None:
    """Ctrl-C while the reply is being written keeps what was written and exits 130.

    The reply cannot end before the interrupt: the CLI's stdout is a pipe the test has filled, so its first write of
    the reply blocks (each piece is generated, then printed, on the same thread), and the interrupt is sent once the
    CLI is seen blocked in that write: a condition, not a time, however busy the machine is.
    """
    read_end, write_end = os.pipe()
    capacity = fcntl.fcntl(write_end, F_GETPIPE_SZ)
    os.write(write_end, b"\0" * capacity)  # full: the next write to it blocks until the test reads
    proc = subprocess.Popen(
        [ASSISTANT, "chat", "Count from 1 to 500, separated by commas."],
        stdin=subprocess.DEVNULL,
        stdout=write_end,
        stderr=subprocess.PIPE,
        env=cli_env(ASSISTANT_MAX_TOKENS="2000"),
        cwd=ROOT,
    )
    os.close(write_end)
    assert proc.stderr is not None
    while not blocked_writing_a_pipe(proc.pid):
        assert proc.poll() is None, proc.stderr.read().decode()  # it may only end after the interrupt
        time.sleep(0.01)  # polling the condition above
    proc.send_signal(signal.SIGINT)
    with os.fdopen(read_end, "rb") as reader:
        out = reader.read()  # drains the pipe, so the CLI can finish writing and exit
    err = proc.stderr.read().decode()
    assert proc.wait() == 130, err
    assert out[:capacity] == b"\0" * capacity
    printed = out[capacity:].decode()
    assert "Traceback" not in err
    assert "partial reply was kept" in err
    with open_store(home) as store:
        (conversation,) = store.list_conversations()
        user, reply = store.messages(conversation.id)
    assert user.content == "Count from 1 to 500, separated by commas."
    assert reply.finish_reason == "cancelled" and not reply.complete
    # What was printed is part of what was kept: the pieces generated before the interrupt, nothing after it. The
    # interrupt lands in the write of a piece, so that piece may or may not reach stdout (a write to a full pipe
    # interrupted by a signal is abandoned); it is stored either way.
    assert reply.content.strip()
    assert reply.content.startswith(printed.removesuffix("\n"))
    assert len(reply.content) < 200
