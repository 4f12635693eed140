"""`assistant models` through the real CLI: list, add, use, remove, and pull without a network."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from assistant.config import SETTINGS_FILE
from assistant.models import smollm2_path
from assistant.runtime.gguf import check_gguf
from tests.test_cli_chat import chat_json, ok, one_sentence_error, run_cli

# A well-formed GGUF v3 header with no tensors and no metadata: `models add` takes it, llama.cpp cannot load it.
EMPTY_GGUF = b"GGUF" + struct.pack("<IQQ", 3, 0, 0) + b"\0" * 40


def listed(**env: Any) -> dict[str, dict[str, Any]]:
    rows = json.loads(ok("models", "list", "--json", **env).stdout)
    return {row["name"]: row for row in rows}


def saved_model(home: Path) -> str | None:
    file = home / SETTINGS_FILE
    return tomllib.loads(file.read_text())["model"] if file.exists() else None


def test_list_shows_bundled_models_and_the_active_one(home: Path) -> None:
    rows = listed()
    assert rows["smollm2"]["active"] and rows["smollm2"]["source"] == "bundled"
    assert rows["smollm2"]["size_bytes"] > 50_000_000 and Path(rows["smollm2"]["path"]).is_file()
    assert not rows["gemma3-270m"]["active"] and rows["gemma3-270m"]["source"] == "bundled"
    table = ok("models", "list").stdout
    assert "smollm2" in table and "gemma3-270m" in table and "*" in table
    assert not (home / "models" / "gemma-3-270m-Q4_K_M.gguf").exists()  # listing never assembles


@pytest.mark.model
@pytest.mark.slow
def test_add_use_chat_remove(home: Path, tmp_path: Path) -> None:
    source = smollm2_path(home / "models")
    assert source is not None
    copy = tmp_path / "my-small-model.gguf"
    shutil.copyfile(source, copy)

    done = ok("models", "add", str(copy), "--name", "tiny")
    assert "tiny" in done.stderr
    rows = listed()
    assert rows["tiny"]["path"] == str(copy) and rows["tiny"]["source"] == "local" and not rows["tiny"]["active"]
    assert rows["tiny"]["size_bytes"] == copy.stat().st_size

    ok("models", "use", "tiny")
    assert saved_model(home) == "tiny"
    assert listed()["tiny"]["active"] and not listed()["smollm2"]["active"]
    assert chat_json("Hello!")["model"] == "tiny"  # the active model answers

    done = ok("models", "remove", "tiny")
    assert "left in place" in done.stderr
    assert "tiny" not in listed()
    assert copy.exists()  # the user's file is never deleted
    assert saved_model(home) == "smollm2"  # the removed model was active: back to the default
    assert listed()["smollm2"]["active"]


def test_add_defaults_the_name_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "Qwen2.5 0.5B Instruct.gguf"
    path.write_bytes(EMPTY_GGUF)
    ok("models", "add", str(path))
    assert listed()["Qwen2.5-0.5B-Instruct"]["path"] == str(path)


def test_refusals_leave_the_settings_alone(home: Path, tmp_path: Path) -> None:
    assert "no model called 'nope'" in one_sentence_error(run_cli("models", "use", "nope"), code=5)
    assert saved_model(home) is None
    assert "no model called 'nope'" in one_sentence_error(run_cli("models", "remove", "nope"), code=5)
    assert "cannot be removed" in one_sentence_error(run_cli("models", "remove", "smollm2"), code=2)
    text = tmp_path / "notes.gguf"
    text.write_text("just some text")
    assert "not a GGUF model file" in one_sentence_error(run_cli("models", "add", str(text)), code=3)
    assert "does not exist" in one_sentence_error(run_cli("models", "add", str(tmp_path / "absent.gguf")), code=3)
    assert "bundled model" in one_sentence_error(
        run_cli("models", "add", str(smollm2_path(tmp_path)), "--name", "smollm2"), code=2
    )
    assert set(listed()) == {"smollm2", "gemma3-270m"}


def test_use_checks_the_file_before_saving(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "soon-gone.gguf"
    path.write_bytes(EMPTY_GGUF)
    ok("models", "add", str(path), "--name", "soon-gone")
    path.unlink()
    assert "does not exist" in one_sentence_error(run_cli("models", "use", "soon-gone"), code=3)
    assert saved_model(home) is None
    assert listed()["soon-gone"]["missing"]


def test_the_bundled_files_header_accounts_for_every_byte(tmp_path: Path) -> None:
    source = smollm2_path(tmp_path)
    assert source is not None
    header = check_gguf(source)
    assert header is not None and header.version == 3 and len(header.tensors) > 100
    assert header.metadata["general.architecture"] == "llama"
    assert header.data_start % header.alignment == 0
    assert header.data_end() == source.stat().st_size  # the last tensor ends exactly at the end of the file


@pytest.mark.parametrize("head", [5_000_000, 600_000, 20], ids=["5MB-head", "inside-header", "inside-counts"])
def test_add_refuses_a_truncated_gguf(home: Path, tmp_path: Path, head: int) -> None:
    source = smollm2_path(tmp_path)
    assert source is not None
    truncated = tmp_path / "partial-download.gguf"
    with source.open("rb") as fh:
        truncated.write_bytes(fh.read(head))
    line = one_sentence_error(run_cli("models", "add", str(truncated), "--name", "partial"), code=3)
    assert str(truncated) in line and "truncated" in line
    assert "partial" not in listed()


def test_add_refuses_a_gguf_with_a_nonsense_header(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "garbage.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + bytes(range(256)) * 8)
    line = one_sentence_error(run_cli("models", "add", str(path)), code=3)
    assert str(path) in line and ("damaged" in line or "truncated" in line)
    path.write_bytes(b"GGUF" + struct.pack("<I", 1) + b"\0" * 64)  # GGUF v1: 32-bit counts, not read by llama.cpp
    assert "version 1" in one_sentence_error(run_cli("models", "add", str(path)), code=3)
    assert set(listed()) == {"smollm2", "gemma3-270m"}


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def test_pull_offline_fails_with_one_sentence(home: Path) -> None:
    done = run_cli("models", "pull", "someone/some-model-GGUF", "model.Q4_0.gguf", HF_HUB_OFFLINE="1")
    assert "HF_HUB_OFFLINE" in one_sentence_error(done, code=3)
    assert set(listed()) == {"smollm2", "gemma3-270m"}


@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare -n` (root)")
def test_pull_without_a_network_fails_with_one_sentence(home: Path) -> None:
    done = run_cli(
        "models",
        "pull",
        "someone/some-model-GGUF",
        "model.Q4_0.gguf",
        prefix=["unshare", "-n"],
        HF_HUB_OFFLINE=None,
        TRANSFORMERS_OFFLINE=None,  # huggingface_hub reads it too; the learning tests' processes set it
    )
    line = one_sentence_error(done, code=3)
    assert "Cannot reach the Hugging Face Hub" in line
    assert set(listed()) == {"smollm2", "gemma3-270m"}


def test_pull_refuses_a_file_that_is_not_gguf(home: Path) -> None:
    done = run_cli("models", "pull", "someone/repo", "weights.safetensors")
    assert "Only GGUF" in one_sentence_error(done, code=2)
