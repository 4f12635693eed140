"""Doctor's privacy checks: no outbound attempt, nothing written outside the data and cache dirs, no leftovers.

The proof is a probe: a child process that loads the embedder's runtime (onnxruntime) and opens a vector index
(chromadb) the way the assistant does, with ``HOME`` pointed at an empty temporary dir and nothing telling the
libraries to stay quiet but the assistant itself. onnxruntime's telemetry, when on, writes its device id and event
queue under ``HOME`` the moment it loads, so an empty ``HOME`` afterwards shows it is off; where strace is
installed the probe also runs under it and any AF_INET/AF_INET6 ``connect``/``sendto``/``sendmsg`` fails the check.
The probe writes only inside its own temporary dir, which is removed: doctor still changes nothing of the user's.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Verdict = tuple[Literal["ok", "warn", "fail"], str, str]  # status, detail, fix

PROBE = """
import sys
from pathlib import Path

import storage.embedder  # what the assistant imports before onnxruntime
from storage.vectors import ChromaIndex

try:
    import onnxruntime
    print("onnxruntime", onnxruntime.__version__)
except ImportError:
    print("onnxruntime missing")
index = ChromaIndex(Path(sys.argv[1]))
index.count()
index.close()
print("done")
"""
NETWORK = re.compile(r"AF_INET6?\b")


@dataclass
class ProbeResult:
    ran: bool = False
    error: str = ""
    onnxruntime: str = ""  # its version, or "" when it is not installed
    traced: bool = False  # strace watched the probe
    network: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)  # files the probe left under its empty HOME


def _strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    try:
        return subprocess.run(["strace", "-f", "-qq", "-o", os.devnull, "true"], capture_output=True).returncode == 0
    except OSError:
        return False


def run_probe(code: str = PROBE) -> ProbeResult:
    """Run ``code`` in a child process with an empty HOME (under strace when it works) and report what it did."""
    result = ProbeResult()
    with tempfile.TemporaryDirectory(prefix="assistant-doctor-") as scratch:
        home, data = Path(scratch, "home"), Path(scratch, "data")
        home.mkdir()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("XDG_", "ORT_", "SQLITE_TMPDIR", "ASSISTANT_", "CHROMA_"))
        }
        env.update(HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
        trace = Path(scratch, "trace.txt")
        prefix = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(trace)]
        result.traced = _strace_works()
        command = [*(prefix if result.traced else []), sys.executable, "-c", code, str(data)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=scratch)
        except (OSError, subprocess.TimeoutExpired) as exc:
            result.error = str(exc)
            return result
        if done.returncode != 0 or "done" not in done.stdout.split():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            result.error = f"the probe failed ({tail})"
            return result
        result.ran = True
        for line in done.stdout.splitlines():
            if line.startswith("onnxruntime ") and line != "onnxruntime missing":
                result.onnxruntime = line.split(" ", 1)[1]
        if result.traced and trace.exists():
            result.network = [line for line in trace.read_text(errors="replace").splitlines() if NETWORK.search(line)]
        result.strays = sorted(str(p.relative_to(home)) for p in home.rglob("*") if not p.is_dir())
    return result


def network_verdict(probe: ProbeResult) -> Verdict:
    if not probe.ran:
        return "warn", f"could not be verified: {probe.error}", "Reinstall with `make install`."
    runtime = f"onnxruntime {probe.onnxruntime}" if probe.onnxruntime else "onnxruntime (not installed)"
    if probe.network:
        return (
            "fail",
            f"a probe loading {runtime} and chromadb tried the network: {probe.network[0][:160]}",
            "Report this: the assistant must never reach out. Run it under `unshare -n` meanwhile.",
        )
    how = "traced with strace" if probe.traced else "not traced: install strace to watch connect(2) too"
    return (
        "ok",
        f"no outbound attempt: a probe loading {runtime} (telemetry off: ORT_DISABLE_TELEMETRY=1 set before it "
        f"loads) and chromadb (in-process, telemetry off) made no internet connection ({how})",
        "",
    )


def outside_writes_verdict(probe: ProbeResult) -> Verdict:
    if not probe.ran:
        return "warn", f"could not be verified: {probe.error}", "Reinstall with `make install`."
    if probe.strays:
        return (
            "fail",
            f"a probe with an empty HOME wrote {', '.join('~/' + s for s in probe.strays[:3])}",
            "Report this: the assistant writes only to its data and cache dirs.",
        )
    return (
        "ok",
        "a probe with an empty HOME left it empty: no telemetry queue or device id, only the data and cache dirs",
        "",
    )


def leftovers_verdict() -> Verdict:
    from storage.embedder import telemetry_queue_dir

    queue = telemetry_queue_dir()
    if queue.exists():
        return (
            "warn",
            f"{queue} holds onnxruntime's telemetry queue and device id from an earlier version (or another "
            "program using onnxruntime); the assistant no longer writes it",
            f"Delete it: `rm -rf {shlex.quote(str(queue))}`",
        )
    return "ok", f"no onnxruntime telemetry queue at {queue}", ""
