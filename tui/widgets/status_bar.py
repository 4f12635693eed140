"""The status bar: model, adapter, state, memory on/off and the speed of the last reply (only measured values)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

STATE_STYLES = {
    "starting": "bold yellow",
    "loading model": "bold yellow",
    "ready": "bold green",
    "reading prompt": "bold cyan",
    "generating": "bold cyan",
    "stopped": "bold magenta",
    "error": "bold red",
}


class StatusBar(Static):
    """One line of honest facts about the assistant."""

    model: reactive[str] = reactive("")
    adapter: reactive[str] = reactive("none")
    state: reactive[str] = reactive("loading model")
    tokens_per_s: reactive[float | None] = reactive(None)
    memory: reactive[str] = reactive("")  # "on" or "off"; empty (not shown) until the session is open
    learning: reactive[str] = reactive("")  # a background learning run's progress; empty (not shown) when none runs

    def __init__(self, model: str, state: str, *, memory: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        # Set before mounting, so a model that loads (or fails) before the screen mounts is never overwritten.
        self.set_reactive(StatusBar.model, model)
        self.set_reactive(StatusBar.state, state)
        self.set_reactive(StatusBar.memory, memory)

    def render(self) -> Text:
        speed = f"{self.tokens_per_s:.1f} tok/s" if self.tokens_per_s else "–"
        text = Text()
        text.append(" model ", style="dim")
        text.append(self.model or "–", style="bold")
        text.append("  adapter ", style="dim")
        text.append(self.adapter)
        text.append("  state ", style="dim")
        text.append(self.state, style=STATE_STYLES.get(self.state, ""))
        if self.memory:
            text.append("  memory ", style="dim")
            text.append(self.memory, style="green" if self.memory == "on" else "yellow")
        text.append("  last reply ", style="dim")
        text.append(speed)
        if self.learning:
            text.append("  learning ", style="dim")
            text.append(self.learning, style="bold magenta")
        return text
