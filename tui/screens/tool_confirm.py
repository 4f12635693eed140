"""Before a tool with side effects runs: a modal naming the tool, where it comes from and its arguments (Run / Cancel),
and ``ToolConfirmer``, the session's ``confirm_tool`` in the TUI.

The session asks from the turn's worker thread; the modal lives on the UI thread. The question is posted to the UI
(``App.call_later`` posts a message, which is thread-safe) rather than sent with ``call_from_thread``: that one waits
for the UI thread, and while the app closes, the UI thread itself waits for the turn's thread, so both would hang.
The worker then waits on an Event that the modal's answer, a stopped turn or the app closing sets; every way but
Run answers False.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

if TYPE_CHECKING:
    from assistant.tools.core import Tool

SHOWN_VALUE_CHARS = 400


def shown_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN_VALUE_CHARS else text[:SHOWN_VALUE_CHARS].rstrip() + "…"


class ToolConfirmScreen(ModalScreen[bool]):
    """Run a tool with side effects? True only for an explicit Run (y)."""

    AUTO_FOCUS = "#cancel"
    BINDINGS = [Binding("y", "answer(True)", "Run"), Binding("escape,n", "answer(False)", "Cancel")]

    def __init__(self, name: str, source: str, description: str, arguments: dict[str, Any]) -> None:
        super().__init__()
        self.tool_name = name
        self.source = source
        self.description = description
        self.arguments = dict(arguments)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="tool-confirm"):
            yield Static(Text(f"Run the tool {self.tool_name}?"), classes="title")
            about = Text()
            about.append("from ", style="dim")
            about.append(self.source, style="bold")
            if self.description:
                about.append(f": {self.description}")
            yield Static(about, id="tool-about")
            yield Static(Text("It changes something (it has side effects), so it asks first.", style="dim"))
            table = Table.grid(padding=(0, 2))
            table.add_column(style="bold cyan", no_wrap=True)
            table.add_column()
            for key, value in self.arguments.items():
                table.add_row(key, Text(shown_value(value)))
            with VerticalScroll(id="tool-arguments"):
                yield Static(table if self.arguments else Text("(no arguments)", style="dim"))
            with Horizontal(classes="buttons"):
                yield Button("Run (y)", id="run", variant="warning")
                yield Button("Cancel (n)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "run")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ToolConfirmer:
    """``Session.confirm_tool`` for the TUI: asks with ToolConfirmScreen and waits for the answer.

    ``stopped`` gives the running turn's stop Event (None: no turn); a turn already stopped is never asked about.
    ``on_state`` hears, on the UI thread, what the turn is doing: waiting for the user, then running the tool.
    """

    def __init__(
        self,
        app: App[Any],
        stopped: Callable[[], threading.Event | None] = lambda: None,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.stopped = stopped
        self.on_state = on_state or (lambda state: None)
        self._lock = threading.Lock()
        self._waiting: set[threading.Event] = set()
        self._closed = False

    def __call__(self, tool: Tool, arguments: dict[str, Any]) -> bool:
        stop = self.stopped()
        if self._closed or (stop is not None and stop.is_set()):
            return False
        answered = threading.Event()
        choice: list[bool] = []

        def done(answer: bool | None) -> None:
            choice.append(bool(answer))
            answered.set()
            self.on_state("running tool" if answer else "generating")

        def ask() -> None:
            if answered.is_set():  # cancelled before the UI got to it
                return
            screen = ToolConfirmScreen(tool.name, tool.source, tool.description, arguments)
            self.app.push_screen(screen, done)
            self.on_state("waiting for you")

        with self._lock:
            if self._closed:
                return False
            self._waiting.add(answered)
        try:
            if threading.get_ident() == getattr(self.app, "_thread_id", None):
                return False  # on the UI thread no modal could be answered while this waits
            if not self.app.is_running or not self.app.call_later(ask):
                return False
            answered.wait()
        finally:
            with self._lock:
                self._waiting.discard(answered)
        # Esc on the turn (or the app closing) while the modal was up: refused, whatever was clicked after.
        return bool(choice) and choice[0] and not (stop is not None and stop.is_set())

    def cancel(self, *, close: bool = False) -> None:
        """Answer every open question with Cancel (the turn stopped); ``close``: and every later one (app closing)."""
        with self._lock:
            self._closed = self._closed or close
            waiting = list(self._waiting)
        for answered in waiting:
            answered.set()
        # dismiss() pops whatever screen is on top, so only the question itself, when it is on top, is closed.
        if not close and waiting and isinstance(self.app.screen, ToolConfirmScreen):
            self.app.screen.dismiss(False)
