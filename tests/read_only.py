"""Run the real CLI against a data dir it cannot write, for root too.

Root writes through file modes, so for root the data dir is bind-mounted read-only onto itself in a private mount
namespace (`unshare -m`); other users get a 0500 dir with a 0400 database. Either way `os.access` and SQLite see a
directory that cannot be written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from tests.test_cli_chat import ASSISTANT, ROOT, cli_env

MOUNT_RO = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


@cache
def read_only_mount_works() -> bool:
    if os.geteuid() != 0:
        return True  # file modes do it
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = Path(os.environ.get("TMPDIR", "/tmp"))
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", MOUNT_RO + " 2>/dev/null", str(probe), "true"],
        capture_output=True,
    )
    return done.returncode == 0


def run_read_only(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `assistant` with ``home`` read-only; stdout and stderr as text."""
    command = [ASSISTANT, *args]
    if os.geteuid() == 0:
        command = ["unshare", "-m", "--propagation", "private", "sh", "-c", MOUNT_RO, str(home), *command]
    done = subprocess.run(command, capture_output=True, env=cli_env(ASSISTANT_HOME=str(home), **env), cwd=ROOT)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    )


@contextmanager
def read_only(home: Path) -> Iterator[None]:
    """File modes that forbid writing to a non-root user (a no-op for root, whom the mount restricts)."""
    database = home / "assistant.db"
    if os.geteuid() != 0:
        home.chmod(0o500)
        database.chmod(0o400)
    try:
        yield
    finally:
        home.chmod(0o700)
        database.chmod(0o600)
