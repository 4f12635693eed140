"""One learning run at a time: an ``flock`` on a file in the data dir.

The kernel drops the lock when its holder dies, however it dies (a kill, a crash, a power cut), so a run that
did not finish never blocks the next one: there is no stale lock to clean up. The file holds the holder's pid, only
to say who holds it. ``flock`` (not ``lockf``) conflicts within one process too, so a second run started from the
same process (the TUI's "learn now" during a scheduled run of the same app) is refused as well.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import AssistantError
from storage.paths import data_dir, ensure_private_dir

LOCK_FILE = "learn.lock"


class RunInProgress(AssistantError):
    """Another learning run holds the lock."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        who = f" (pid {pid})" if pid else ""
        super().__init__(f"A learning run is already in progress{who}; wait for it to finish.")


@dataclass(slots=True, frozen=True)
class HeldLock:
    path: Path
    pid: int


def lock_path(home: Path | None = None) -> Path:
    return (home or data_dir()) / LOCK_FILE


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextmanager
def run_lock(home: Path | None = None) -> Iterator[HeldLock]:
    """Hold the learning lock for the ``with`` block; raises :class:`RunInProgress` when another run holds it."""
    home = home or data_dir()
    ensure_private_dir(home)
    path = lock_path(home)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInProgress(_read_pid(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield HeldLock(path, os.getpid())
        finally:
            os.ftruncate(fd, 0)  # the file stays (removing it would race with the next run's open)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder(home: Path | None = None) -> int | None:
    """The pid of the run holding the lock (0 when its pid is not written yet), or None when no run holds it."""
    path = lock_path(home)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
