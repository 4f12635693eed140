"""What the transcript says about a turn besides its text: a notice (the message was trimmed to fit, memory was
unavailable) and a failed turn (the error, with a Retry button), so neither fades with a toast."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Static

NO_REPLY = "No reply was written for this message (the model failed or the assistant closed first)."
TRIMMED_MESSAGE = (
    "Only the start and end of this message were sent (it is longer than the context); it is stored in full."
)
TRIMMED_HISTORY = "Earlier messages did not fit the context window and were left out of this reply's prompt."


def for_tui(error: str) -> str:
    """A model error as the TUI says it: its advice to run a CLI command gives way to the key that helps here."""
    kept = []
    for sentence in error.replace(". ", ".\n").splitlines():
        parts = [part for part in sentence.split("; ") if "`assistant " not in part]
        if parts:
            text = "; ".join(parts)
            kept.append(text if text.endswith((".", "!", "?")) else text + ".")
    return " ".join([*kept, "Press Ctrl+O to choose another model."])


class TurnNotice(Static):
    """One warning sentence under a message, in the transcript."""

    def __init__(self, text: str) -> None:
        super().__init__(Text(f"⚠ {text}"), classes="turn-notice")
        self.text = text


class FailedTurn(Horizontal):
    """The error of a turn that did not finish, with a Retry button (F6 does the same)."""

    class RetryRequested(Message):
        """The user pressed Retry."""

    def __init__(self, error: str) -> None:
        super().__init__(classes="failed-turn")
        self.error = error

    def compose(self) -> ComposeResult:
        yield Static(Text(f"✗ {self.error}"), classes="error-text")
        yield Button("Retry (F6)", classes="retry", variant="error", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.RetryRequested())
