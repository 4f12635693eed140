"""F1: every key of the assistant on one screen."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, str]] = [
    ("Enter", "send the message"),
    ("Ctrl+J / Alt+Enter", "new line in the message (Shift+Enter too, where the terminal has it)"),
    ("Esc", "stop the reply (what was written is kept, marked stopped)"),
    ("Ctrl+N", "new conversation"),
    ("F2 / F8", "rename / delete the conversation (delete asks first)"),
    ("Ctrl+L", "filter the conversations in the sidebar"),
    ("Ctrl+F", "search every message"),
    ("F3 / F4", "rate the reply good / bad (again to clear)"),
    ("F5", "write a better answer for the reply"),
    ("F6", "regenerate the last reply, or retry a failed or stopped one"),
    ("F7", "edit and resend your message (above the picked reply, else the last)"),
    ("F9", "copy the reply"),
    ("Ctrl+S", "why the reply has its badge: ok, check, unsupported or masked"),
    ("click a reply", "pick it for F3, F4, F5, F7, F9 and Ctrl+S (default: the last reply)"),
    ("/tool NAME …", "run a tool: `/tool calculate 2+3*4` (Tab completes; changes ask)"),
    ("Ctrl+R / Ctrl+G", "memory: facts and recalled messages / memory on or off (status bar)"),
    ("click “recalled”", "show the memories a reply was given"),
    ("F10", "learning: runs, scores, adapters (activate, roll back), learn now"),
    ("Ctrl+O", "switch model"),
    ("Ctrl+T", "dark / light theme (a theme picked in the palette is saved too)"),
    ("F1 / Ctrl+P", "this help / the command palette"),
    ("Ctrl+Q", "quit"),
]


class HelpScreen(ModalScreen[None]):
    """The list of keys."""

    AUTO_FOCUS = None  # nothing to type here
    BINDINGS = [Binding("escape,f1,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            table.add_row(key, what)
        with Vertical(id="dialog", classes="help"):
            yield Static("Keys", classes="title")
            yield Static(table)
            yield Static("Esc closes this help.", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
