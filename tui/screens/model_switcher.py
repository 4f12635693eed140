"""Pick the model to chat with."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from assistant.models import ModelSpec


class ModelSwitcherScreen(ModalScreen[str | None]):
    """Returns the chosen model's name, or None."""

    AUTO_FOCUS = "#models"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, models: list[ModelSpec], current: str, failed: str | None = None) -> None:
        """``failed``: a model that could not be loaded; it is marked, and the list opens on another."""
        super().__init__()
        self.models = models
        self.current = current
        self.failed = failed

    def compose(self) -> ComposeResult:
        options = []
        for spec in self.models:
            prompt = Text()
            prompt.append("● " if spec.name == self.current else "  ", style="green")
            prompt.append(spec.name, style="bold")
            prompt.append(f"  {spec.source}", style="dim")
            if spec.name == self.failed:
                prompt.append("  could not be loaded", style="bold red")
            if spec.chat is False:
                prompt.append("  base model, not for chat", style="yellow")
            if spec.description:
                prompt.append(f"\n    {spec.description}", style="dim")
            options.append(Option(prompt, id=spec.name))
        with Vertical(id="dialog", classes="wide"):
            yield Static("Switch model", classes="title")
            yield OptionList(*options, id="models")
            yield Static("Enter switches, Esc cancels. The model loads with the next message.", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one("#models", OptionList)
        names = [m.name for m in self.models]
        usable = [n for n in names if n != self.failed]
        start = self.current if self.current in usable else (usable[0] if usable else self.current)
        options.highlighted = names.index(start) if start in names else 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
