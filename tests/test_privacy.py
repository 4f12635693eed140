"""Nothing leaves the machine and nothing lands outside the data and cache dirs, checked on what a new user runs.

Each command runs as a real subprocess under strace (every thread, native code included): ``connect``, ``sendto``
and ``sendmsg`` show any network attempt, and the file-creating calls (``open*`` for writing, ``creat``,
``mkdir*``, ``rename*``, ``link*``, ``symlink*``) show where it writes. ``HOME`` is an empty temporary dir and no
``XDG_*`` or ``ASSISTANT_*`` variable is set, so the data dir is the platform default under that ``HOME``
(``~/.local/share/assistant``) and so is the cache dir (``~/.cache/assistant``); the first chat exports the
embedder into it. The child gets ``PYTHONDONTWRITEBYTECODE=1``: Python's own bytecode caches are the one write
outside those dirs that is expected, and it is the interpreter's, not the assistant's. The working directory is
an empty dir too, so a relative path (chromadb's default ``./chroma``, a ``.env``) would show up there.

The commands share one ``HOME`` in the order a new user meets them: two chats with memory on (the second one
starts the embedder), ``memory search``, ``history import``, then the TUI's first turn. The control tests prove each detector catches what it looks for:
a deliberate connect, and onnxruntime's own telemetry when it is left on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli_chat import ASSISTANT, ROOT

WRITE_CALLS = "open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,symlink,symlinkat"
NETWORK_CALLS = "connect,sendto,sendmsg"
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
NETWORK = re.compile(r"AF_INET6?\b|AF_NETLINK")
SYSTEM_ALLOWED = ("/dev/", "/proc/")
FIXTURES = Path(__file__).parent / "data"
CHATS = ["My sister Noor has a dachshund called Pepperoni.", "What is my sister's dog called?"]


def _strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    return subprocess.run(["strace", "-f", "-qq", "-o", os.devnull, "true"], capture_output=True).returncode == 0


needs_strace = pytest.mark.skipif(not _strace_works(), reason="needs strace with ptrace allowed")


# -- reading a trace --------------------------------------------------------------------------------------------

_LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<rest>.*)$")
_RESUMED = re.compile(r"^<\.\.\. \w+ resumed>(?P<tail>.*)$")
_CALL = re.compile(r"^(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<result>-?\d+|\?)")
_FD_PATH = re.compile(r"^(?:AT_FDCWD|-?\d+<(?P<dir>[^>]*)>)$")


def _joined(text: str) -> list[str]:
    """Whole calls, one per line: strace splits a call that another thread interrupts into two lines."""
    pending: dict[str, str] = {}
    calls: list[str] = []
    for raw in text.splitlines():
        match = _LINE.match(raw)
        if not match:
            continue
        pid, rest = match["pid"], match["rest"]
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest.removesuffix("<unfinished ...>").rstrip()
            continue
        if resumed := _RESUMED.match(rest):
            rest = pending.pop(pid, "") + resumed["tail"]
        calls.append(rest)
    return calls


def _strings(args: str) -> list[str]:
    """The quoted arguments of a call, unescaped enough for paths."""
    return [s.encode().decode("unicode_escape") for s in re.findall(r'"((?:[^"\\]|\\.)*)"', args)]


def _split_args(args: str) -> list[str]:
    """Top-level comma-separated arguments (strings and {...} may hold commas)."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(args):
        if quoted:
            if ch == '"' and args[i - 1] != "\\":
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch in "{[<":
            depth += 1
        elif ch in "}]>":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(args[start:i].strip())
            start = i + 1
    parts.append(args[start:].strip())
    return parts


def _resolve(dirfd: str | None, path: str, cwd: Path) -> Path:
    if os.path.isabs(path):
        return Path(os.path.normpath(path))
    base = cwd
    if dirfd is not None and (match := _FD_PATH.match(dirfd)) and match["dir"]:
        base = Path(match["dir"])
    return Path(os.path.normpath(base / path))


@dataclass
class Trace:
    network: list[str] = field(default_factory=list)  # calls that reached for an internet or netlink socket
    written: list[tuple[str, Path]] = field(default_factory=list)  # (call, path) of every successful write

    def outside(self, *allowed: Path) -> list[str]:
        """Writes that landed anywhere but under ``allowed`` (or /dev, /proc); making the parents of an allowed dir
        (``~/.local/share`` on the way to the data dir) is not a write."""
        bad = []
        for call, path in self.written:
            if str(path).startswith(SYSTEM_ALLOWED) or any(path.is_relative_to(a) for a in allowed):
                continue
            if call.startswith("mkdir") and any(a.is_relative_to(path) for a in allowed):
                continue
            bad.append(f"{call} {path}")
        return sorted(set(bad))


def read_trace(text: str, cwd: Path) -> Trace:
    trace = Trace()
    for line in _joined(text):
        match = _CALL.match(line)
        if not match:
            continue
        name, args, result = match["name"], match["args"], match["result"]
        if name in ("connect", "sendto", "sendmsg"):
            if NETWORK.search(args):
                trace.network.append(line)
            continue
        if result == "?" or int(result) < 0:
            continue  # failed: nothing was written
        parts = _split_args(args)
        if name in ("open", "openat"):
            dirfd = parts[0] if name == "openat" else None
            flags = parts[2 if name == "openat" else 1] if len(parts) > (2 if name == "openat" else 1) else ""
            if not any(flag in flags for flag in WRITE_FLAGS):
                continue
            paths = [_resolve(dirfd, _strings(parts[1 if name == "openat" else 0])[0], cwd)]
        elif name in ("creat", "mkdir", "rename", "link", "symlink"):
            strings = _strings(args)
            paths = [_resolve(None, strings[-1], cwd)]
        elif name in ("mkdirat",):
            paths = [_resolve(parts[0], _strings(parts[1])[0], cwd)]
        elif name in ("renameat", "renameat2", "linkat"):
            paths = [_resolve(parts[2], _strings(parts[3])[0], cwd)]
        elif name == "symlinkat":
            paths = [_resolve(parts[1], _strings(parts[2])[0], cwd)]
        else:
            continue
        trace.written.extend((name, p) for p in paths)
    return trace


# -- running a command like a new user ----------------------------------------------------------------------------


@dataclass
class UserHome:
    """An empty HOME (and working dir) the commands share, with the default data and cache dirs inside it."""

    home: Path
    cwd: Path

    @property
    def data(self) -> Path:
        return self.home / ".local" / "share" / "assistant"

    @property
    def cache(self) -> Path:
        return self.home / ".cache" / "assistant"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ASSISTANT_", "XDG_", "HF_", "TRANSFORMERS_", "ORT_", "CHROMA_", "SQLITE_TMPDIR"))
        }
        env.update(
            HOME=str(self.home),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONPATH=str(ROOT),
            ASSISTANT_SEED="42",
            ASSISTANT_TEMPERATURE="0",
            ASSISTANT_MAX_TOKENS="24",
            COLUMNS="200",
        )
        env.update(extra)
        return env

    def run(self, *command: str, trace_file: Path, **extra: str) -> tuple[subprocess.CompletedProcess[str], Trace]:
        calls = f"{NETWORK_CALLS},{WRITE_CALLS}"
        done = subprocess.run(
            ["strace", "-f", "-qq", "-y", "-s", "4096", "-e", f"trace={calls}", "-o", str(trace_file), *command],
            capture_output=True,
            text=True,
            errors="replace",
            env=self.env(**extra),
            cwd=self.cwd,
            timeout=900,
        )
        return done, read_trace(trace_file.read_text(errors="replace"), self.cwd)

    def assert_private(self, trace: Trace) -> None:
        """No network attempt; writes only under the data and cache dirs; HOME holds nothing else."""
        assert trace.network == [], "network attempts:\n" + "\n".join(trace.network)
        assert trace.outside(self.data, self.cache) == []
        assert trace.written, "the trace saw no write at all: the detector is blind"
        assert list(self.cwd.iterdir()) == []
        mine = (self.data, self.cache)
        strays = [p for p in self.home.rglob("*") if not p.is_dir() and not any(p.is_relative_to(d) for d in mine)]
        assert strays == [], f"files outside the data and cache dirs: {strays}"


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> UserHome:
    home, cwd = tmp_path_factory.mktemp("user-home"), tmp_path_factory.mktemp("user-cwd")
    return UserHome(home, cwd)


@pytest.fixture(scope="module")
def chats(user: UserHome, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, Trace]]:
    """A new user's first two chats, memory on. The first finds nothing to recall and leaves its messages queued;
    the second exports the embedder into the cache dir, starts it, indexes the first call's messages and recalls."""
    traces = tmp_path_factory.mktemp("traces")
    return [
        user.run(ASSISTANT, "chat", "--json", message, trace_file=traces / f"chat{i}.txt")
        for i, message in enumerate(CHATS)
    ]


# -- the commands ---------------------------------------------------------------------------------------------------


@pytest.mark.model
@needs_strace
def test_chats_with_memory_stay_private(user: UserHome, chats: Any) -> None:
    for done, trace in chats:
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["reply"].strip()
        user.assert_private(trace)
    # Memory really ran in the second: the embedder's export is in the cache dir, the index was written, and the
    # first chat was recalled.
    done, trace = chats[1]
    assert any(user.cache.rglob("*.onnx"))
    assert any(path.is_relative_to(user.data / "memory") for _, path in trace.written)
    assert any("Pepperoni" in m["text"] for m in json.loads(done.stdout)["memories"])


@pytest.mark.model
@needs_strace
def test_memory_search_stays_private(user: UserHome, chats: Any, tmp_path: Path) -> None:
    assert all(done.returncode == 0 for done, _ in chats)
    done, trace = user.run(ASSISTANT, "memory", "search", "--json", "sister's dog", trace_file=tmp_path / "t.txt")
    assert done.returncode == 0, done.stderr
    assert "Pepperoni" in json.dumps(json.loads(done.stdout))  # found by the embedder (the index is not empty)
    user.assert_private(trace)


@pytest.mark.model
@needs_strace
def test_history_import_stays_private(user: UserHome, chats: Any, tmp_path: Path) -> None:
    assert all(done.returncode == 0 for done, _ in chats)
    done, trace = user.run(
        ASSISTANT, "history", "import", str(FIXTURES / "minimal.json"), trace_file=tmp_path / "t.txt"
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    # the import indexed the new messages for memory inside the traced process
    assert any(path.is_relative_to(user.data / "memory") for _, path in trace.written)
    user.assert_private(trace)


TUI_DRIVER = """
import asyncio, json, sys

from tui.app import AssistantApp


async def main() -> None:
    app = AssistantApp()
    async with app.run_test(size=(110, 34)) as pilot:

        async def until(condition, what):
            for _ in range(20000):  # a bound on polls, not a clock: the model load and reply need a few hundred
                if condition():
                    return
                await pilot.pause(0.05)
            raise SystemExit(f"gave up waiting for {what}")

        await until(lambda: app.session is not None and app.session.loaded, "the model")
        session = app.session
        before = len(session.store.list_conversations())
        app.main.prompt.insert(sys.argv[1])
        await pilot.press("enter")

        def replied():
            conversations = session.store.list_conversations()
            if len(conversations) <= before:
                return False
            messages = session.store.messages(conversations[0].id)
            return any(m.role == "assistant" and m.complete for m in messages) and not app.main.generating

        await until(replied, "the reply")
        memory = session.wait_for_memory()
        await until(lambda: memory is not None and memory.pending_count() == 0, "the memory index")
        messages = session.store.messages(session.store.list_conversations()[0].id)
        print(json.dumps({"reply": messages[-1].content, "embedder": memory.embedder.engine}))


asyncio.run(main())
"""


@pytest.mark.model
@needs_strace
def test_tui_first_turn_stays_private(user: UserHome, chats: Any, tmp_path: Path) -> None:
    assert all(done.returncode == 0 for done, _ in chats)
    driver = tmp_path / "drive_tui.py"  # outside the user's dirs: written here, before the trace starts
    driver.write_text(TUI_DRIVER)
    done, trace = user.run(sys.executable, str(driver), "What is a haiku?", trace_file=tmp_path / "t.txt")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["reply"].strip() and result["embedder"] == "onnx"
    user.assert_private(trace)


# -- the detectors catch what they look for ------------------------------------------------------------------------


@needs_strace
def test_control_a_connect_and_a_stray_write_are_caught(tmp_path: Path) -> None:
    home = UserHome(tmp_path / "home", tmp_path / "cwd")
    home.home.mkdir()
    home.cwd.mkdir()
    probe = (
        "import socket, pathlib, os\n"
        "s = socket.socket(); s.settimeout(1)\n"
        "try: s.connect(('127.0.0.1', 9))\n"
        "except OSError: pass\n"
        "pathlib.Path(os.environ['HOME'], 'stray').write_text('x')\n"
        "pathlib.Path('relative').mkdir()\n"
    )
    done, trace = home.run(sys.executable, "-c", probe, trace_file=tmp_path / "t.txt")
    assert done.returncode == 0, done.stderr
    assert any("AF_INET" in line and "127.0.0.1" in line for line in trace.network)
    outside = trace.outside(home.data, home.cache)
    assert f"openat {home.home / 'stray'}" in outside
    assert f"mkdir {home.cwd / 'relative'}" in outside
    with pytest.raises(AssertionError):
        home.assert_private(trace)


@needs_strace
def test_control_onnxruntime_left_alone_writes_outside(tmp_path: Path) -> None:
    """What the embedder prevents: onnxruntime imported without the switch queues telemetry under HOME."""
    home = UserHome(tmp_path / "home", tmp_path / "cwd")
    home.home.mkdir()
    home.cwd.mkdir()
    done, trace = home.run(sys.executable, "-c", "import onnxruntime", trace_file=tmp_path / "t.txt")
    assert done.returncode == 0, done.stderr
    queue = home.home / ".cache" / "Microsoft" / "DeveloperTools" / ".onnxruntime"
    assert any(p.is_relative_to(queue) for p in (Path(line.split(" ", 1)[1]) for line in trace.outside()))
    # Through the embedder module, the same import writes nothing (a fresh HOME: the queue is not there yet).
    fresh = UserHome(tmp_path / "home2", home.cwd)
    fresh.home.mkdir()
    done, trace = fresh.run(
        sys.executable, "-c", "import storage.embedder, onnxruntime", trace_file=tmp_path / "t2.txt"
    )
    assert done.returncode == 0, done.stderr
    assert [w for w in trace.outside() if "/.onnxruntime" in w] == []
    assert list(fresh.home.iterdir()) == []
