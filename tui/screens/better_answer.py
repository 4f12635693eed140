"""Write the answer the assistant should have given (stored as feedback with the reply)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea


class BetterAnswerScreen(ModalScreen[str | None]):
    """Returns the better answer, or None when cancelled."""

    AUTO_FOCUS = "#better"
    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("escape", "cancel", "Cancel")]

    def __init__(self, reply: str, better: str | None = None) -> None:
        super().__init__()
        self.reply = reply
        self.better = better or ""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Static("Write a better answer", classes="title")
            with VerticalScroll(classes="original"):
                yield Static(Text(self.reply or "(empty reply)", style="dim"))
            yield TextArea(self.better or self.reply, id="better", soft_wrap=True)
            yield Static("Ctrl+S saves, Esc cancels.", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#better", TextArea).focus()

    def action_save(self) -> None:
        text = self.query_one("#better", TextArea).text.strip()
        if not text:
            self.notify("The better answer is empty; write it or press Esc.", severity="warning")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
