"""A chat turn never touches the network: no socket in-process, and the real CLI runs with no network at all.

No HF_HUB_OFFLINE-style variable is set here: chat must not need one. tests/test_privacy.py traces the real CLI and
TUI (memory on) with strace: every connect(2), native code included, and every file written.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from storage.db import open_store
from tests.test_cli_chat import TURN_FIELDS, run_cli

OFFLINE_VARIABLES = ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"]


@pytest.fixture(autouse=True)
def no_offline_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: an earlier test in the run may have imported it.
    import sys

    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.mark.model
def test_chat_turn_opens_no_socket(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args[1:] if what.startswith('socket.') else args}")
            raise OSError(f"network use is not allowed in this test: {what}")

        return blocked

    for name in ("connect", "connect_ex", "sendto", "bind"):
        monkeypatch.setattr(socket.socket, name, refuse(f"socket.{name}"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "gethostbyname", refuse("gethostbyname"))

    result = CliRunner().invoke(cli, ["chat", "--json", "Say hello in one word."])
    assert result.exception is None, result.output
    assert result.exit_code == 0
    turn = json.loads(result.stdout)
    assert TURN_FIELDS <= set(turn) and turn["reply"].strip()
    assert attempts == []
    with open_store(home) as store:
        assert store.messages(turn["conversation_id"])[-1].content == turn["reply"]

    # The trap works: the one command that does use the network is caught by it.
    pulled = CliRunner().invoke(cli, ["models", "pull", "someone/repo", "model.gguf"])
    assert pulled.exit_code == 3 and "Cannot reach the Hugging Face Hub" in pulled.stderr
    assert attempts and attempts[0].startswith("create_connection")


def _works(*command: str) -> bool:
    if shutil.which(command[0]) is None:
        return False
    return subprocess.run([*command, "true"], capture_output=True).returncode == 0


@pytest.mark.model
@pytest.mark.skipif(not _works("unshare", "-n"), reason="needs `unshare -n` (root)")
def test_chat_works_with_no_network_at_all(home: Path) -> None:
    done = run_cli("chat", "--json", "My wifi is called PastelNet.", prefix=["unshare", "-n"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reply"].strip()
    # The second call starts the embedder and chromadb (memory on) to index the first and recall it.
    again = run_cli("chat", "--json", "What is my wifi called?", prefix=["unshare", "-n"])
    assert again.returncode == 0, again.stderr
    assert any("PastelNet" in m["text"] for m in json.loads(again.stdout)["memories"])
