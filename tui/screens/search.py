"""Full-text search over every message; choosing a hit opens its conversation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from assistant import conversations
from assistant.errors import AssistantError
from storage.records import SearchHit

if TYPE_CHECKING:
    from storage.db import Store


def hit_prompt(hit: SearchHit) -> Text:
    text = Text()
    text.append(hit.conversation_title or "(untitled)", style="bold")
    text.append(f"  {hit.role}\n", style="dim")
    # The snippet marks matches with [ and ]; show them highlighted rather than as brackets.
    for i, part in enumerate(hit.snippet.replace("]", "[").split("[")):
        text.append(part, style="bold yellow" if i % 2 else "")
    return text


class SearchScreen(ModalScreen[int | None]):
    """Returns the conversation id of the chosen hit, or None."""

    AUTO_FOCUS = "#query"
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("down", "to_results", show=False)]

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.hits: list[SearchHit] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Static("Search messages", classes="title")
            yield Input(placeholder="Words to find", id="query")
            yield OptionList(id="hits")
            yield Static("Type to search, Down to the results, Enter opens, Esc closes.", classes="hint")

    def on_input_changed(self, event: Input.Changed) -> None:
        try:
            self.hits = conversations.search(self.store, event.value)
        except AssistantError as exc:
            self.notify(str(exc), severity="error", markup=False)
            self.hits = []
        hits = self.query_one("#hits", OptionList)
        hits.clear_options()
        hits.add_options([Option(hit_prompt(h), id=str(i)) for i, h in enumerate(self.hits)])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.hits:
            self.dismiss(self.hits[0].conversation_id)

    def action_to_results(self) -> None:
        hits = self.query_one("#hits", OptionList)
        if hits.option_count:
            hits.focus()
            hits.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(self.hits[int(event.option.id)].conversation_id)

    def action_cancel(self) -> None:
        self.dismiss(None)
