"""F7: edit a message you sent and send it again; what followed it is replaced by the new reply."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea


class EditMessageScreen(ModalScreen[str | None]):
    """Returns the edited message, or None when cancelled."""

    AUTO_FOCUS = "#edited"
    BINDINGS = [Binding("ctrl+s", "send", "Send"), Binding("escape", "cancel", "Cancel")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Static("Edit and resend", classes="title")
            yield TextArea(self.text, id="edited", soft_wrap=True)
            yield Static(
                "Ctrl+S sends it in place of the old one; the replies after it are replaced. Esc cancels.",
                classes="hint",
            )

    def action_send(self) -> None:
        text = self.query_one("#edited", TextArea).text
        if not text.strip():
            self.notify("The message is empty; write it or press Esc.", severity="warning")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
