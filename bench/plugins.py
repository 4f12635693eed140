"""Plugins: what discovery adds to start-up, what loading costs when tools are first needed, one tool round trip.

(a) Start-up: ``assistant --help`` in fresh interpreters with five plugins installed (five small distributions on
PYTHONPATH, each registering a tool and a command) against the same command without them, alternated (ABAB...) in
the same run; the paired difference is what discovery adds (target <= 50 ms: discovery is lazy, so it should be
noise). Then ``load_tools`` in a fresh interpreter, timed inside it, with the five plugins against without them:
the price paid once, when tools are first needed.

(b) One round trip through ``Tools.call`` for a no-op tool (argument checking, the worker thread, the result made
text), the tool's own time excluded, against calling the function directly; median over many calls
(target <= 20 ms). The MCP stdio round trip is measured by ``bench/plugins_mcp.py`` (``mcp_round_trip``) when it
is there and reported beside it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from bench import Row, child_env, log, median, spread, temp_home, venv_bin

START_TARGET_MS = 50.0
ROUND_TRIP_TARGET_MS = 20.0
PLUGINS = 5

PLUGIN_SOURCE = """
import click
from assistant.plugins import hookimpl, tool


@tool
def ping_{n}(text: str = "") -> str:
    '''Answer with the text.

    Args:
        text: What to send back.
    '''
    return text or "pong"


@hookimpl
def register_tools(register, context):
    register(ping_{n})


@hookimpl
def register_commands(cli):
    @cli.command("ping{n}")
    def ping() -> None:
        '''Print pong.'''
        click.echo("pong")
"""

LOAD_CODE = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
from assistant.config import load_settings
from assistant.tools.registry import load_tools
home = Path(sys.argv[1])
tools = load_tools(load_settings(home), home)
names = [t.name for t in tools.list()]
print(json.dumps({"ms": (time.perf_counter() - started) * 1000, "tools": names,
                  "failed": [i.error for i in tools.failures]}))
"""


def write_plugins(site: Path, count: int = PLUGINS) -> None:
    """``count`` installed-looking distributions (dist-info with an entry point, and a module) in ``site``."""
    for n in range(count):
        info = site / f"bench_plugin_{n}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: bench-plugin-{n}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[assistant.plugins]\nbench{n} = bench_plugin_{n}\n")
        (site / f"bench_plugin_{n}.py").write_text(textwrap.dedent(PLUGIN_SOURCE.format(n=n)))


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} exited {done.returncode}: {done.stderr[-300:]}")
    return seconds * 1000


def _load_in_child(home: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", LOAD_CODE, str(home)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"load_tools exited {done.returncode}: {done.stderr[-300:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def startup(reps: int) -> dict[str, Any]:
    """`assistant --help` and load_tools with and without five plugins, alternated, in fresh interpreters."""
    with temp_home() as home, tempfile.TemporaryDirectory(prefix="assistant-bench-plugins-") as tmp:
        site = Path(tmp)
        write_plugins(site)
        bare = child_env(home)
        bare.pop("PYTHONPATH", None)
        with_plugins = dict(bare, PYTHONPATH=str(site))
        command = [str(venv_bin("assistant")), "--help"]
        _timed(command, bare), _timed(command, with_plugins)  # warm the page cache for both sides
        help_with, help_without, load_with, load_without = [], [], [], []
        check: dict[str, Any] = {}
        for _ in range(reps):
            help_without.append(_timed(command, bare))
            help_with.append(_timed(command, with_plugins))
        for _ in range(reps):
            load_without.append(_load_in_child(home, bare)["ms"])
            check = _load_in_child(home, with_plugins)
            load_with.append(check["ms"])
        plugin_tools = [name for name in check.get("tools", []) if name.startswith("ping_")]
        if len(plugin_tools) != PLUGINS or check.get("failed"):
            raise RuntimeError(f"the bench plugins did not all load: {plugin_tools}, failures {check.get('failed')}")
    return {
        "help_with_ms": help_with,
        "help_without_ms": help_without,
        "help_diff_ms": [a - b for a, b in zip(help_with, help_without, strict=True)],
        "load_with_ms": load_with,
        "load_without_ms": load_without,
        "load_diff_ms": [a - b for a, b in zip(load_with, load_without, strict=True)],
    }


def round_trip(calls: int) -> dict[str, Any]:
    """Tools.call on a no-op tool against a direct call, interleaved; the tool's own time subtracted."""
    from assistant.tools.core import tool
    from assistant.tools.registry import Tools

    inside: list[float] = []

    @tool
    def noop(text: str = "") -> str:
        """Do nothing."""
        started = time.perf_counter()
        result = text
        inside.append(time.perf_counter() - started)
        return result

    tools = Tools([noop])
    through, direct = [], []
    for _ in range(20):  # warm-up: first thread start, imports on first use
        tools.call("noop", {"text": "x"})
    inside.clear()
    for _ in range(calls):
        started = time.perf_counter()
        result = tools.call("noop", {"text": "x"})
        elapsed = time.perf_counter() - started
        through.append((elapsed - inside[-1]) * 1000)
        started = time.perf_counter()
        noop.func(text="x")
        direct.append((time.perf_counter() - started - inside[-1]) * 1000)
        assert result.ok
    return {"through_ms": through, "direct_ms": direct, "calls": calls}


def mcp(reps: int) -> dict[str, Any] | None:
    """The MCP stdio round trip from bench/plugins_mcp.py, when that part exists (None otherwise)."""
    try:
        from bench.plugins_mcp import mcp_round_trip  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    result: dict[str, Any] = mcp_round_trip(reps)
    return result


def run(reps: int = 10, calls: int = 500) -> dict[str, Any]:
    log(f"  start-up: assistant --help and load_tools, with and without {PLUGINS} plugins, {reps} reps each")
    results: dict[str, Any] = {"startup": startup(reps)}
    log(f"  round trip: {calls} calls of a no-op tool")
    results["round_trip"] = round_trip(calls)
    try:
        results["mcp"] = mcp(max(5, reps))
    except Exception as exc:  # the MCP part failing must not hide the plugin figures
        results["mcp"] = {"error": f"{type(exc).__name__}: {exc}"}
    return results


def _paired(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def rows(results: dict[str, Any]) -> list[Row]:
    s, r = results["startup"], results["round_trip"]
    added = _paired(s["help_diff_ms"])
    overhead = median(r["through_ms"])
    out = [
        Row(
            "plugins",
            f"start-up added by {PLUGINS} plugins (--help)",
            median(s["help_with_ms"]),
            median(s["help_without_ms"]),
            "ms",
            "diff",
            target=f"<= {START_TARGET_MS:.0f} ms",
            met=None if added is None else added <= START_TARGET_MS,
            note=f"paired diff {added} ms; with {spread(s['help_with_ms'])}, without {spread(s['help_without_ms'])}",
            paired=added,
        ),
        Row(
            "plugins",
            f"load_tools, {PLUGINS} plugins (first use)",
            median(s["load_with_ms"]),
            median(s["load_without_ms"]),
            "ms",
            "diff",
            note="in a fresh interpreter, imports included; baseline: the built-in tools alone",
            paired=_paired(s["load_diff_ms"]),
        ),
        Row(
            "plugins",
            "tool round trip overhead (Tools.call)",
            overhead,
            median(r["direct_ms"]),
            "ms",
            "diff",
            target=f"<= {ROUND_TRIP_TARGET_MS:.0f} ms",
            met=None if overhead is None else overhead <= ROUND_TRIP_TARGET_MS,
            note=f"median of {r['calls']} calls, the tool's own time excluded; p95 "
            f"{sorted(r['through_ms'])[int(len(r['through_ms']) * 0.95) - 1]:.2f} ms; baseline: a direct call",
        ),
    ]
    m = results.get("mcp")
    if isinstance(m, dict):
        # bench/plugins_mcp.py's dict: "median_ms" (one call through the MCP source), optionally "baseline_ms"
        # (the same tool in-process) and "note"; or "error".
        out.append(
            Row(
                "plugins",
                "MCP stdio round trip",
                m.get("median_ms"),
                m.get("baseline_ms"),
                "ms",
                "diff",
                note=str(m.get("error") or m.get("note") or ""),
            )
        )
    return out
