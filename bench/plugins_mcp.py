"""The MCP stdio round trip: one call of ``mcp-server-time``'s ``get_current_time`` through ``McpSource``.

A call is a JSON-RPC request written to the server's stdin and its answer read from its stdout, handed between our
thread and the source's asyncio loop. The baseline is the same function of the time server called in-process, so
the difference is what the transport costs. The server's start (spawn, ``initialize``, ``tools/list``) is timed
apart: it is paid once, the first time tools are needed. ``python -m bench.plugins_mcp`` runs it alone.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

from bench import log, median, spread, temp_home, venv_bin

TIMEZONE = "Europe/Oslo"


def _server() -> Any:
    from assistant.config.settings import McpServer

    script = venv_bin("mcp-server-time")
    if script.exists():
        return McpServer(command=str(script))
    return McpServer(command=sys.executable, args=["-m", "mcp_server_time"])


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2)


def _in_process(calls: int) -> list[float]:
    """The time server's own work, called directly: what a round trip costs without the transport."""
    from mcp_server_time.server import TimeServer

    server = TimeServer()
    server.get_current_time(TIMEZONE)  # warm the zone cache like the server's first call does
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        server.get_current_time(TIMEZONE)
        times.append((time.perf_counter() - started) * 1000)
    return times


def mcp_round_trip(reps: int) -> dict[str, Any]:
    """Median and spread (ms) of one MCP stdio round trip, and of the server's start, apart.

    ``reps`` sets the size: ``min(reps, 5)`` server starts and ``max(50, 20 * reps)`` calls on one started server
    (after two warm-up calls: the first loads the server's zone data).
    """
    from assistant.tools.mcp import McpSource

    starts = max(1, min(reps, 5))
    calls = max(50, 20 * reps)
    start_ms: list[float] = []
    call_ms: list[float] = []
    with temp_home() as home:
        for n in range(starts):
            source = McpSource("time", _server(), home)
            try:
                started = time.perf_counter()
                tools = {tool.name: tool for tool in source.tools()}
                start_ms.append((time.perf_counter() - started) * 1000)
                if n:
                    continue
                now = tools["get_current_time"]
                for _ in range(2):
                    json.loads(now.func(timezone=TIMEZONE))
                for _ in range(calls):
                    started = time.perf_counter()
                    now.func(timezone=TIMEZONE)
                    call_ms.append((time.perf_counter() - started) * 1000)
            finally:
                source.close()
    direct_ms = _in_process(calls)
    return {
        "median_ms": median(call_ms),
        "spread_ms": spread(call_ms),
        "p95_ms": _p95(call_ms),
        "stdev_ms": round(statistics.stdev(call_ms), 2) if len(call_ms) > 1 else None,
        "calls": len(call_ms),
        "baseline_ms": median(direct_ms),
        "start_median_ms": median(start_ms),
        "start_spread_ms": spread(start_ms),
        "starts": len(start_ms),
        "note": (
            f"median of {len(call_ms)} calls of get_current_time (mcp-server-time), spread {spread(call_ms)} ms, "
            f"p95 {_p95(call_ms)} ms; server start {median(start_ms)} ms (spawn, initialize, tools/list; "
            f"{len(start_ms)} starts, spread {spread(start_ms)}); baseline: the same function in-process"
        ),
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    log(f"MCP stdio round trip, reps={count}")
    print(json.dumps(mcp_round_trip(count), indent=2))
