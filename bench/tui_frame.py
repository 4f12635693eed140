"""Time to first frame of the TUI, launched for real in tmux, against a one-widget Textual app launched the same way.

The clock starts just before ``tmux new-session`` and stops when ``tmux capture-pane`` first shows a string the
app draws. tmux runs on a private socket (``-L``) with one idle session kept open, so its server start-up is
paid once, before any measurement, and the user's own tmux sessions are never touched.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Row, child_env, load_average, log, median, spread, temp_home, venv_bin

TARGET_S = 1.0
WIDTH, HEIGHT = 120, 40
POLL_S = 0.01
TIMEOUT_S = 20.0
READY_TIMEOUT_S = 10.0

# Strings the assistant's TUI draws on its first screen (all must show): the prompt's placeholder, the sidebar and
# the status bar (tui/widgets/prompt.py, sidebar.py, status_bar.py). The screen is interactive from then on (typing
# works); settings, database and session open in a worker right after it.
TUI_MARKERS = ("Message the assistant", "New chat", "adapter")
# The status bar once settings, database and model are loaded in their workers (reported, no target).
TUI_READY_MARKERS = ("model smollm2", "state ready")

BARE_MARKER = "bench-bare-app-ready"
BARE_APP = f"""
from textual.app import App, ComposeResult
from textual.widgets import Static


class Bare(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("{BARE_MARKER}")


Bare().run()
"""


class Tmux:
    """A private tmux server for the benchmark's own sessions."""

    def __init__(self) -> None:
        self.socket = f"assistant-bench-{id(self):x}"
        self._tmux("new-session", "-d", "-s", "keepalive", "-x", str(WIDTH), "-y", str(HEIGHT), "sleep 3600")

    def _tmux(self, *args: str, check: bool = True) -> str | None:
        """tmux's output, or None when it failed and ``check`` is off (e.g. the session has already ended)."""
        proc = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            if check:
                raise RuntimeError(f"tmux {args[0]} failed: {proc.stderr.strip()}")
            return None
        return proc.stdout

    def time_to_screen(
        self, name: str, command: list[str], env: dict[str, str], markers: tuple[str, ...], then: tuple[str, ...] = ()
    ) -> tuple[float | None, float | None]:
        """Seconds until all of ``markers`` show, then until all of ``then`` show (None: not within the timeout)."""
        # tmux's own environment is the server's, so pass the child's settings on the command line.
        line = shlex.join(
            ["env", *(f"{k}={v}" for k, v in env.items() if k.startswith(("ASSISTANT_", "HF_"))), *command]
        )
        started = time.perf_counter()
        self._tmux("new-session", "-d", "-s", name, "-x", str(WIDTH), "-y", str(HEIGHT), line)
        first = ready = None
        try:
            while time.perf_counter() - started < (TIMEOUT_S if first is None else first + READY_TIMEOUT_S):
                screen = self._tmux("capture-pane", "-p", "-t", name, check=False)
                if screen is None:
                    break  # the app exited (or crashed) before drawing what we wait for
                now = time.perf_counter() - started
                if first is None and all(m in screen for m in markers):
                    first = now
                if first is not None and (not then or all(m in screen for m in then)):
                    ready = now if then else None
                    break
                time.sleep(POLL_S)
        finally:
            self._tmux("kill-session", "-t", name, check=False)
        return first, ready

    def close(self) -> None:
        self._tmux("kill-server", check=False)


def run(reps: int = 5) -> dict[str, Any]:
    """Alternate the assistant's TUI and the bare app; medians of ``reps`` each."""
    if shutil.which("tmux") is None:
        return {"skipped": "tmux is not installed"}
    tmux = Tmux()
    first: dict[str, list[float]] = {"assistant_tui": [], "bare_textual": []}
    ready: list[float] = []
    failures: list[str] = []
    try:
        with temp_home() as home, tempfile.TemporaryDirectory(prefix="assistant-bench-") as tmp:
            bare = Path(tmp) / "bare_app.py"
            bare.write_text(BARE_APP, encoding="utf-8")
            env = child_env(home)
            commands = {
                "assistant_tui": ([str(venv_bin("assistant"))], TUI_MARKERS, TUI_READY_MARKERS),
                "bare_textual": ([sys.executable, str(bare)], (BARE_MARKER,), ()),
            }
            # One unmeasured launch of each: the first run also pays for compiling bytecode and a cold page cache.
            for kind, (cmd, markers, _) in commands.items():
                tmux.time_to_screen(f"warm-{kind}", cmd, env, markers)
            for rep in range(reps):
                for kind in list(commands) if rep % 2 == 0 else list(commands)[::-1]:
                    cmd, markers, then = commands[kind]
                    shown, loaded = tmux.time_to_screen(f"{kind}-{rep}", cmd, env, markers, then)
                    if shown is None:
                        failures.append(f"{kind} rep {rep + 1}: no first screen within {TIMEOUT_S:.0f} s")
                        continue
                    first[kind].append(shown)
                    if loaded is not None:
                        ready.append(loaded)
                    log(f"  tui rep {rep + 1}/{reps} {kind:14} first screen {shown * 1000:6.0f} ms")
    finally:
        tmux.close()
    result: dict[str, Any] = {"reps": reps, "size": f"{WIDTH}x{HEIGHT}", "load_average_after": load_average()}
    for kind, values in first.items():
        ms = [v * 1000 for v in values]
        result[kind] = {"first_screen_ms": median(ms), "first_screen_ms_range": spread(ms)}
    result["assistant_tui"]["model_ready_ms"] = median([v * 1000 for v in ready])
    if failures:
        result["failures"] = failures
    return result


def rows(result: dict[str, Any]) -> list[Row]:
    if "skipped" in result:
        return [Row("tui", "first screen ms", None, None, "ms", "diff", note=result["skipped"])]
    tui, bare = result["assistant_tui"], result["bare_textual"]
    row = Row(
        "tui",
        "first screen ms: assistant TUI vs one-Static Textual app",
        tui["first_screen_ms"],
        bare["first_screen_ms"],
        "ms",
        "diff",
        f"<= {TARGET_S * 1000:.0f} ms",
        note="; ".join(result.get("failures", [])),
    )
    if tui["first_screen_ms"] is not None:
        row.met = tui["first_screen_ms"] <= TARGET_S * 1000
    out = [row]
    if tui.get("model_ready_ms") is not None:
        out.append(Row("tui", "model loaded ms (status bar), assistant TUI", tui["model_ready_ms"], None, "ms", "diff"))
    return out
