"""The learning job as a child process that speaks JSON lines: what the TUI's "learn now" runs.

``python -m learning.background --home DIR`` runs :func:`learning.job.run` at nice 10 and writes one JSON object per
line on stdout, flushed as it goes:

- ``{"event": "step", "text": "training"}``: the job moved to a new step;
- ``{"event": "progress", "step": 3, "total": 40, "loss": 2.31, "tokens_per_s": 410.0}``: a training step done;
- ``{"event": "done", "report": {...}}``: the run finished (promoted, refused or nothing; ``RunReport.to_dict``);
- ``{"event": "error", "message": "..."}``: it did not (another run holds the lock, a stop, an error): one sentence.

The last line is always ``done`` or ``error`` unless the process is killed. Exit status: 0 after ``done``; after
``error``, the error's code from ``storage.errors`` (1 for another run in progress or a stop).

A process rather than a thread of the TUI: training holds the GIL in long stretches and torch's threads spin, so a
thread would stall the interface; a niced child leaves the chat its core, and SIGTERM cancels it (the job is
crash-safe: the next run marks this one failed and tidies what it left). Anything that libraries print is sent to
stderr, so stdout carries the events alone.

``--wait-for PATH`` (a hook for tests) makes the child say ``{"event": "step", "text": "waiting to start"}`` and wait
until PATH exists before the run starts, so a test can hold a run "in progress" for as long as it needs, cancel it or
release it, without a clock.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

EVENTS = ("step", "progress", "done", "error")
NICE = 10
WAITING = "waiting to start"
STOPPED = "Learning was stopped; the active adapter is unchanged and the next run starts over or resumes."


@dataclass(slots=True)
class Event:
    """One line the child wrote."""

    kind: str  # one of EVENTS
    text: str = ""  # step: its name; error: the sentence
    step: int = 0
    total: int = 0
    loss: float | None = None
    tokens_per_s: float | None = None
    report: dict[str, Any] = field(default_factory=dict)


def parse_event(line: str) -> Event | None:
    """The event on one line of the child's stdout; None for anything else (a stray line is ignored, not fatal)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("event") not in EVENTS:
        return None
    kind = str(data["event"])
    if kind == "progress":
        return Event(
            kind,
            step=int(data.get("step") or 0),
            total=int(data.get("total") or 0),
            loss=_number(data.get("loss")),
            tokens_per_s=_number(data.get("tokens_per_s")),
        )
    if kind == "done":
        report = data.get("report")
        return Event(kind, report=report if isinstance(report, dict) else {})
    return Event(kind, text=str(data.get("text") or data.get("message") or ""))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def command(home: Path, wait_for: Path | None = None) -> list[str]:
    """The child's command line (the TUI starts it with ``subprocess.Popen``)."""
    argv = [sys.executable, "-m", "learning.background", "--home", str(home)]
    if wait_for is not None:
        argv += ["--wait-for", str(wait_for)]
    return argv


# -- the child --------------------------------------------------------------------------------------------------------


class _Out:
    """The events' channel: the original stdout, kept apart from fd 1 (which now goes to stderr)."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._stream: IO[str] = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
        os.dup2(2, 1)  # a library's print() must not break a line of JSON
        sys.stdout = sys.stderr

    def emit(self, event: str, **data: Any) -> None:
        try:
            self._stream.write(json.dumps({"event": event, **data}, ensure_ascii=False) + "\n")
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reader is gone (the TUI closed): the run goes on to its end, quietly


def _stop(signum: int, frame: Any) -> None:
    # Outside training (where train.py's own handler checkpoints first), SIGTERM unwinds like Ctrl+C: the job
    # records the run as failed and releases its lock on the way out.
    raise KeyboardInterrupt


def _wait_for(path: Path) -> None:
    while not path.exists():  # a test hook: the test creates the file when it is ready
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m learning.background", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="The data dir to learn from.")
    parser.add_argument("--wait-for", type=Path, default=None, help="Start once this file exists (tests).")
    options = parser.parse_args(argv)
    out = _Out()
    try:
        os.nice(NICE)
    except OSError:
        pass  # already as nice as allowed
    signal.signal(signal.SIGTERM, _stop)
    try:
        if options.wait_for is not None:
            out.emit("step", text=WAITING)  # said once the SIGTERM handler is in place: a test may cancel now
            _wait_for(options.wait_for)
        from learning.job import run

        report = run(
            options.home,
            on_step=lambda text: out.emit("step", text=text),
            on_progress=lambda p: out.emit(
                "progress", step=p.step, total=p.total_steps, loss=round(p.loss, 4),
                tokens_per_s=round(p.tokens_per_s, 1),
            ),
        )  # fmt: skip
    except KeyboardInterrupt:
        out.emit("error", message=STOPPED)
        return 1
    except Exception as exc:  # one sentence for the TUI, never a traceback
        from assistant.errors import AssistantError

        if isinstance(exc, AssistantError):
            out.emit("error", message=str(exc))
            return int(getattr(exc, "exit_code", 1))
        out.emit("error", message=f"The learning run failed ({type(exc).__name__}: {exc}).")
        return 1
    out.emit("done", report=report.to_dict())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
