"""Learn now in the TUI: the learning job in a child process (``learning.background``), read in a thread worker.

The app owns one :class:`BackgroundLearn`, so a run outlives the Learning screen: the user can close the screen and
chat while it trains (the child is niced, and its torch threads leave a core free). Each JSON line the child writes
comes back to the UI thread as a :class:`LearnUpdate` message; the app hands it to :meth:`BackgroundLearn.apply`,
which keeps the state, puts a word in the status bar, tells an open Learning screen, and notifies when the run
ends. Cancel sends SIGTERM: the job is crash-safe (training checkpoints its step; the next run tidies up).
Closing the app stops a run in progress the same way, so no untended training is left behind.
"""

from __future__ import annotations

import subprocess
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.css.query import NoMatches
from textual.message import Message

if TYPE_CHECKING:
    from textual.app import App

    from learning.background import Event

ALREADY = "A learning run is already in progress; wait for it to finish, or cancel it on the Learning screen (F10)."


class LearnUpdate(Message):
    """A line from the learning child (``event``), or its end (``event`` None, ``returncode`` set)."""

    def __init__(self, event: Event | None, returncode: int | None = None) -> None:
        super().__init__()
        self.event = event
        self.returncode = returncode


def outcome(report: dict[str, Any]) -> tuple[str, str]:
    """The notification for a finished run, and its severity."""
    status, message = report.get("status"), str(report.get("message") or "")
    if status == "promoted":
        return f"Learned: adapter v{report.get('adapter_version')} promoted. {message}".strip(), "information"
    if status == "refused":
        return message or "The new adapter was not promoted.", "warning"
    return message or f"The learning run ended: {status}.", "information"


class BackgroundLearn:
    """At most one learning child at a time, and what it last said."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.process: subprocess.Popen[str] | None = None
        self.step = ""  # the job's current step ("training", "evaluating: ...")
        self.progress: Event | None = None  # the latest training step
        self.last: Event | None = None  # the final event of the latest run (done or error)
        self.cancelled = False

    @property
    def running(self) -> bool:
        return self.process is not None

    def start(self, home: Path) -> str | None:
        """Start a run in the background; the sentence saying why not when one is running already."""
        if self.process is not None:
            return ALREADY
        from learning import background

        self.step, self.progress, self.last, self.cancelled = "starting", None, None, False
        self.process = subprocess.Popen(
            background.command(home),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # the child turns every failure into an "error" line
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.app.run_worker(partial(self._read, self.process), thread=True, group="learn", exit_on_error=False)
        self._show()
        return None

    def _read(self, process: subprocess.Popen[str]) -> None:
        from learning.background import parse_event

        assert process.stdout is not None
        for line in process.stdout:
            event = parse_event(line)
            if event is not None:
                self.app.post_message(LearnUpdate(event))
        self.app.post_message(LearnUpdate(None, process.wait()))

    def cancel(self) -> bool:
        """Ask the child to stop (SIGTERM); False when nothing runs."""
        if self.process is None or self.process.poll() is not None:
            return False
        self.cancelled = True
        self.step = "stopping"
        self.process.terminate()
        self._show()
        return True

    def stop(self, timeout: float = 10) -> None:
        """The app is closing: end the child (SIGTERM, then SIGKILL if it lingers)."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # -- on the UI thread -----------------------------------------------------------------------------------

    def apply(self, update: LearnUpdate) -> None:
        event = update.event
        if event is None:
            self._ended(update.returncode)
        elif event.kind == "step":
            self.step, self.progress = event.text, None
        elif event.kind == "progress":
            self.step, self.progress = "training", event
        else:
            self.last = event
        self._show()
        from tui.screens.learning import LearningScreen

        for screen in self.app.screen_stack:
            if isinstance(screen, LearningScreen):
                screen.learn_changed()

    def _ended(self, returncode: int | None) -> None:
        self.process = None
        last = self.last
        if last is None:
            note = f"The learning run ended without a word (exit status {returncode}); the active adapter is unchanged."
            self.app.notify(note, severity="error", markup=False, timeout=10)
        elif last.kind == "done":
            text, severity = outcome(last.report)
            self.app.notify(text, severity=severity, markup=False, timeout=10)  # type: ignore[arg-type]
        else:
            severity = "information" if self.cancelled else "error"
            self.app.notify(last.text, severity=severity, markup=False, timeout=10)  # type: ignore[arg-type]
        self.step, self.progress = "", None

    def status_word(self) -> str:
        """What the status bar says while a run goes on ("" when none does)."""
        if self.process is None:
            return ""
        p = self.progress
        if p is not None and p.total:
            loss = f" loss {p.loss:.2f}" if p.loss is not None else ""
            return f"{p.step}/{p.total}{loss}"
        return self.step or "running"

    def _show(self) -> None:
        from tui.screens.chat import ChatScreen
        from tui.widgets.status_bar import StatusBar

        for screen in self.app.screen_stack:
            if isinstance(screen, ChatScreen):
                try:
                    screen.query_one(StatusBar).learning = self.status_word()
                except NoMatches:  # not composed yet
                    pass
