"""The multi-line prompt: Enter sends, Ctrl+J (or Shift+Enter where the terminal reports it) adds a newline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.message import Message
from textual.widgets import TextArea

if TYPE_CHECKING:
    from tui.tool_completion import ToolCompleter

NEWLINE_KEYS = frozenset({"ctrl+j", "shift+enter", "alt+enter"})


class PromptInput(TextArea):
    """A TextArea whose Enter key submits instead of breaking the line."""

    class Submitted(Message):
        """The user pressed Enter to send ``text``."""

        def __init__(self, prompt: PromptInput, text: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text

        @property
        def control(self) -> PromptInput:
            return self.prompt

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            placeholder="Message the assistant (Enter sends, Ctrl+J adds a line)",
        )
        self.completer: ToolCompleter | None = None  # `/tool` completion, set once the session is open

    def update_suggestion(self) -> None:
        """Complete `/tool NAME key=` (shown after the cursor; Right or Tab takes it)."""
        completer, text = self.completer, self.text
        at_end = self.cursor_location == self.document.end
        self.suggestion = completer.suggest(text, self) if completer is not None and at_end else ""

    async def _on_key(self, event: events.Key) -> None:
        # TextArea inserts a newline on Enter; a chat prompt sends instead. Preventing the default stops the
        # TextArea's own handler (it runs after this one in the MRO) from seeing the key.
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.text))
        elif event.key == "tab" and self.suggestion:
            event.stop()
            event.prevent_default()
            self.insert(self.suggestion)
        elif event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
