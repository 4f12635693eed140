"""Ctrl+S (or a click on a reply's badge): why the checker gave the reply its badge, in short sentences."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from assistant.checks import ReplyCheck
from tui.widgets.check_badge import MEANING

LEGEND = "In the reply: unsupported claims in red, unsure spans in yellow, masked data in blue."
NO_DETAILS = "The checker's details were not kept with this reply."


def reasons(check: ReplyCheck | None) -> list[str]:
    """The verdict's sentences (the stored badge alone, when the details could not be read)."""
    return check.why() if check is not None else [NO_DETAILS]


class CheckWhyScreen(ModalScreen[None]):
    """The badge, what it means, and the checker's reasons for one reply."""

    AUTO_FOCUS = None  # nothing to type here
    BINDINGS = [Binding("escape,q,ctrl+s", "close", "Close")]

    def __init__(self, badge: str, check: ReplyCheck | None) -> None:
        super().__init__()
        self.badge = badge
        self.check = check

    def compose(self) -> ComposeResult:
        lines = Text()
        for number, line in enumerate(reasons(self.check)):
            if number:
                lines.append("\n")
            lines.append("• ", style="bold")
            lines.append(line)
        with Vertical(id="dialog", classes="wide why"):
            with Horizontal(classes="why-title"):
                yield Label(self.badge, classes=f"badge-word -{self.badge}")
                yield Static(MEANING.get(self.badge, ""), classes="why-meaning")
            with VerticalScroll(id="why-lines"):
                yield Static(lines, id="why-text")
            yield Static(f"{LEGEND}  Esc closes.", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
