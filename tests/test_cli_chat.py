"""`assistant chat` through the real console script (subprocess), the real bundled model and a real SQLite file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from storage.db import open_store

ROOT = Path(__file__).resolve().parents[1]
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


@pytest.mark.model
@pytest.mark.slow
def test_ctrl_c_keeps_the_partial_reply_and_exits_130(home: Path) -> None:
    """The first streamed bytes arrive while the reply is still being written; Ctrl-C then keeps what was written."""
    proc = subprocess.Popen(
        [ASSISTANT, "chat", "Count from 1 to 500, separated by commas."],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(ASSISTANT_MAX_TOKENS="2000"),
        cwd=ROOT,
    )
    assert proc.stdout is not None
    first = proc.stdout.read(1)  # if the reply were printed only at the end, this would come after the exit
    assert first
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    printed = (first + rest).decode()
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    assert "partial reply was kept" in err.decode()
    with open_store(home) as store:
        (conversation,) = store.list_conversations()
        user, reply = store.messages(conversation.id)
    assert user.content == "Count from 1 to 500, separated by commas."
    assert reply.finish_reason == "cancelled" and not reply.complete
    assert printed.strip() and reply.content.startswith(printed.removesuffix("\n"))
