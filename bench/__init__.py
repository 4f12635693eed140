"""Benchmarks: the assistant against raw llama-cpp-python and a bare Textual app, measured in the same run.

``python -m bench`` (``make bench``) runs every part and prints one table; results also go to
``bench/results/latest.json``. Each part alternates assistant and baseline runs (ABAB...) and reports medians,
so a machine that is busy with something else slows both sides alike.
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A request that makes the small model write until max_tokens, so decode speed is measurable.
PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle. Describe every day in detail."
SEED = 42
MODEL = "smollm2"


@dataclass(slots=True)
class Row:
    """One line of the summary table: the assistant's figure next to its same-run baseline."""

    part: str
    metric: str
    assistant: float | None
    baseline: float | None
    unit: str
    compare: str  # "ratio" (assistant / baseline) or "diff" (assistant - baseline)
    target: str = ""
    met: bool | None = None
    note: str = ""
    paired: float | None = None  # median of per-rep ratios or differences, when runs came in A/B pairs
    extra: dict[str, object] = field(default_factory=dict)

    def comparison(self) -> str:
        if self.paired is not None:
            return f"{self.paired:.1%}" if self.compare == "ratio" else f"{self.paired:+.1f} {self.unit}"
        if self.assistant is None or self.baseline is None:
            return "-"
        if self.compare == "ratio":
            return f"{self.assistant / self.baseline:.1%}" if self.baseline else "-"
        return f"{self.assistant - self.baseline:+.1f} {self.unit}"


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def spread(values: list[float]) -> list[float]:
    """Min and max, rounded: shows how noisy a median was."""
    values = [v for v in values if v is not None]
    return [round(min(values), 2), round(max(values), 2)] if values else []


def venv_bin(name: str) -> Path:
    """A console script next to this interpreter (the project's venv)."""
    return Path(sys.executable).parent / name


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@contextlib.contextmanager
def temp_home() -> Iterator[Path]:
    """A throwaway data dir, so benchmarks never touch the user's conversations."""
    with tempfile.TemporaryDirectory(prefix="assistant-bench-") as tmp:
        yield Path(tmp) / "home"


def model_path(home: Path) -> Path:
    """The bundled default model's file, found the way the assistant finds it."""
    from assistant.models import resolve
    from storage.db import open_store

    with open_store(home) as store:
        spec = resolve(store, MODEL, home / "models")
    assert spec.path is not None
    return spec.path


def load_model(home: Path, n_ctx: int = 512, threads: int = 1) -> Any:
    """The bundled default model, loaded the way the assistant loads any model (``runtime.load_backend``)."""
    from assistant.config import Settings
    from assistant.models import resolve
    from assistant.runtime import load_backend
    from storage.db import open_store

    with open_store(home) as store:
        spec = resolve(store, MODEL, home / "models")
    return load_backend(spec, Settings(threads=threads), n_ctx=n_ctx)


def child_env(home: Path, **settings: object) -> dict[str, str]:
    """The environment for an `assistant` subprocess: a private home and fixed ASSISTANT_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["ASSISTANT_HOME"] = str(home)
    env["HF_HUB_OFFLINE"] = "1"
    for key, value in settings.items():
        env[f"ASSISTANT_{key.upper()}"] = str(value)
    return env


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cpu_jiffies() -> tuple[int, int]:
    """Busy and total jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


class CpuWindow:
    """How many cores the whole machine kept busy over a stretch, and how many of them were not this benchmark.

    "others_cores" is the noise: other people's tests and builds competing with the measurements.
    """

    def __init__(self) -> None:
        self._start = _cpu_jiffies()
        self._own = self._own_seconds()
        self._wall = time.perf_counter()

    @staticmethod
    def _own_seconds() -> float:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def stop(self) -> dict[str, float]:
        busy0, total0 = self._start
        busy1, total1 = _cpu_jiffies()
        cores = os.cpu_count() or 1
        wall = time.perf_counter() - self._wall
        machine = (busy1 - busy0) / max(total1 - total0, 1) * cores
        own = (self._own_seconds() - self._own) / max(wall, 1e-9)
        return {
            "machine_busy_cores": round(machine, 2),
            "bench_cores": round(own, 2),
            "others_cores": round(max(machine - own, 0.0), 2),
        }


Children = dict[str, Callable[[dict[str, Any]], dict[str, Any]]]


def spawn_child(module: str, kind: str, opts: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run one measurement (``python -m MODULE --child KIND OPTS``) in a fresh interpreter; its JSON report, which
    includes its own peak RSS (see ``child_main``)."""
    import json
    import subprocess

    command = [sys.executable, "-m", module, "--child", kind, json.dumps(opts)]
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if done.returncode:
        tail = done.stderr.strip().splitlines()[-1:] or [str(done.returncode)]
        raise RuntimeError(f"{kind} child failed: {tail[0]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def child_main(children: Children, spec: list[str]) -> None:
    """The child side of ``spawn_child``: run ``children[KIND](OPTS)`` and print its report with the peak RSS."""
    import json

    kind, opts = spec
    result = children[kind](json.loads(opts))
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))

