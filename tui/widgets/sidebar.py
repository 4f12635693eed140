"""The sidebar: a filter box, a new-chat button and the list of conversations."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Button, Input, OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

from storage.records import Conversation


class Sidebar(Vertical):
    """Conversations, newest first; selecting one posts ``ConversationSelected``."""

    class ConversationSelected(Message):
        def __init__(self, conversation_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    class NewRequested(Message):
        """The user asked for a new, empty conversation."""

    class FilterChanged(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def compose(self) -> ComposeResult:
        yield Button("+ New chat", id="new-chat", variant="primary", compact=True)
        yield Input(placeholder="Filter conversations", id="filter", compact=True)
        yield OptionList(id="conversations")

    @property
    def options(self) -> OptionList:
        return self.query_one("#conversations", OptionList)

    @property
    def filter_text(self) -> str:
        return self.query_one("#filter", Input).value

    def show(self, conversations: list[Conversation], current: int | None) -> None:
        """Replace the list (titles are user text: never parsed as markup)."""
        options = self.options
        options.clear_options()
        options.add_options(
            [
                Option(Text(c.title or "(untitled)", no_wrap=True, overflow="ellipsis"), id=str(c.id))
                for c in conversations
            ]
        )
        self.mark(current)

    def mark(self, current: int | None) -> None:
        options = self.options
        if current is None:
            options.highlighted = None
            return
        try:
            options.highlighted = options.get_option_index(str(current))
        except OptionDoesNotExist:  # the current conversation is filtered out
            options.highlighted = None

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.NewRequested())

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.FilterChanged(event.value))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.ConversationSelected(int(event.option.id)))
