"""`assistant doctor` through the real CLI: all green on a good install, a failure with a fix for each problem."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

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
}


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
    text = ok("doctor").stdout
    assert "All good" in text and "✗" not in text


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
