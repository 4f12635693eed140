"""`assistant doctor` through the real CLI: all green on a good install, a failure with a fix for each problem."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from assistant.cli.doctor_privacy import network_verdict, outside_writes_verdict, run_probe
from storage.db import Store
from tests.test_cli_chat import ok, run_cli

EXPECTED = {
    "Python",
    "llama-cpp-python",
    "bundled models",
    "settings",
    "data directory",
    "database",
    "active model",
    "threads",
    "disk space",
    "network",
    "files outside the data dir",
    "telemetry leftovers",
    "plugins",
}
ORT_QUEUE = Path(".cache", "Microsoft", "DeveloperTools", ".onnxruntime")


@pytest.fixture(autouse=True)
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own: the real one may hold another program's onnxruntime queue."""
    path = tmp_path / "user"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return path


def report(expect_code: int, **env: Any) -> dict[str, dict[str, Any]]:
    done = run_cli("doctor", "--json", **env)
    assert done.returncode == expect_code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] is (expect_code == 0)
    checks = {c["name"]: c for c in data["checks"]}
    assert set(checks) == EXPECTED
    return checks


def test_good_install_passes(store: Store, home: Path) -> None:
    checks = report(0)
    assert {name: c["status"] for name, c in checks.items()} == dict.fromkeys(EXPECTED, "ok")
    assert "loads in" in checks["active model"]["detail"]
    assert "0.3.36" in checks["llama-cpp-python"]["detail"]
    network = checks["network"]["detail"]
    assert "no outbound attempt" in network and "telemetry off" in network and "onnxruntime 1." in network
    assert ("traced with strace" in network) is (shutil.which("strace") is not None)
    assert "left it empty" in checks["files outside the data dir"]["detail"]
    text = ok("doctor").stdout
    assert "All good" in text and "✗" not in text


def test_leftover_onnxruntime_queue_warns_with_the_command_that_deletes_it(store: Store, user_home: Path) -> None:
    queue = user_home / ORT_QUEUE
    queue.mkdir(parents=True)
    (queue / "onnxruntime.db").write_bytes(b"events")
    (queue / "deviceid").write_text("0f1e2d3c")
    checks = report(0)  # a warning, not a failure
    leftovers = checks["telemetry leftovers"]
    assert leftovers["status"] == "warn" and str(queue) in leftovers["detail"]
    assert leftovers["fix"] == f"Delete it: `rm -rf {queue}`"
    assert (queue / "onnxruntime.db").exists()  # doctor only looks
    command = leftovers["fix"].split("`")[1]
    assert command == f"rm -rf {queue}" and queue.is_relative_to(user_home)  # only ever this test's own dir
    subprocess.run(command, shell=True, check=True)
    assert not queue.exists() and (user_home / ".cache").exists()
    assert report(0)["telemetry leftovers"]["status"] == "ok"


def test_the_privacy_probe_catches_telemetry_and_a_connect() -> None:
    """The probe fails when a library writes under HOME (onnxruntime imported bare, telemetry on) or connects."""
    bare = run_probe("import onnxruntime\nprint('done')")
    assert bare.ran and any(s.startswith(str(ORT_QUEUE)) for s in bare.strays)
    status, detail, _ = outside_writes_verdict(bare)
    assert status == "fail" and "~/.cache/Microsoft" in detail
    if not bare.traced:
        pytest.skip("strace is not available to watch connect(2)")
    connect = run_probe(
        "import socket\ns = socket.socket()\ntry: s.connect(('127.0.0.1', 9))\nexcept OSError: pass\nprint('done')"
    )
    assert connect.network and network_verdict(connect)[0] == "fail"


def test_open_data_dir_fails_and_is_left_as_found(store: Store, home: Path) -> None:
    home.chmod(0o755)
    try:
        checks = report(1)
        text = run_cli("doctor")
        assert stat.S_IMODE(home.stat().st_mode) == 0o755  # doctor only looks
    finally:
        home.chmod(0o700)
    assert checks["data directory"]["status"] == "fail"
    assert "chmod 700" in checks["data directory"]["fix"]
    assert checks["database"]["status"] == "ok"
    assert text.returncode == 1 and "✗ data directory" in text.stdout and "problem" in text.stdout
    assert report(0)["data directory"]["status"] == "ok"


def test_readable_database_file_fails(store: Store, home: Path) -> None:
    store.path.chmod(0o644)
    checks = report(1)
    assert checks["database"]["status"] == "fail" and "chmod 600" in checks["database"]["fix"]


def test_missing_active_model_fails(store: Store, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "mine.gguf"
    path.write_bytes(b"GGUF\x03" + b"\0" * 64)  # a well-formed, empty GGUF v3 header
    ok("models", "add", str(path), "--name", "mine")
    ok("models", "use", "mine")
    path.unlink()
    checks = report(1)
    model = checks["active model"]
    assert model["status"] == "fail" and "does not exist" in model["detail"]
    assert "models use" in model["fix"]
    assert checks["data directory"]["status"] == "ok"


def test_corrupt_model_and_database_fail(store: Store, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "junk.gguf"
    path.write_bytes(b"GGUF\x03" + b"\0" * 64)  # a well-formed, empty GGUF v3 header
    ok("models", "add", str(path), "--name", "junk")
    checks = report(1, ASSISTANT_MODEL="junk")  # valid magic, but llama.cpp cannot load it
    assert checks["active model"]["status"] == "fail" and "could not be loaded" in checks["active model"]["detail"]

    store.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{store.path}{suffix}").unlink(missing_ok=True)
    store.path.write_bytes(b"this is not a database" * 100)
    checks = report(1)
    assert checks["database"]["status"] == "fail" and "damaged" in checks["database"]["fix"]


def test_invalid_settings_fail(store: Store, home: Path) -> None:
    checks = report(1, ASSISTANT_TEMPERATURE="hot")
    assert checks["settings"]["status"] == "fail" and "temperature" in checks["settings"]["detail"]


def test_fresh_install_only_warns(tmp_path: Path) -> None:
    checks = report(0, ASSISTANT_HOME=str(tmp_path / "fresh"))
    assert checks["data directory"]["status"] == "warn" and checks["database"]["status"] == "warn"
    assert not (tmp_path / "fresh").exists()  # doctor creates nothing
