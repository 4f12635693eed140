"""The main screen: conversations on the left, the chat on the right, the reply streaming from a worker thread.

The screen holds the layout and the open conversation; its actions live beside it, one concern each: chat turns
(``chat_turns``: send, stop, regenerate, retry, edit), feedback on replies (``chat_feedback``), the checker's
badges and their "why" (``chat_checks``) and whole conversations and the memory (``chat_conversations``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input

from assistant import conversations
from assistant.errors import AssistantError
from assistant.recalled import recalled_for
from tui.screens.chat_checks import CheckActions
from tui.screens.chat_conversations import ConversationActions, memory_state
from tui.screens.chat_feedback import FeedbackActions
from tui.screens.chat_tools import ToolActions
from tui.screens.chat_turns import TurnActions
from tui.widgets.chat_view import ChatView
from tui.widgets.message import Reply
from tui.widgets.prompt import PromptInput
from tui.widgets.sidebar import Sidebar
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:  # imported for real once the app has opened them, after the first frame
    from assistant.session import Session
    from storage.db import Store

# Actions that need the session; they wait (disabled) until it is open.
SESSION_ACTIONS = frozenset(
    {
        "new_chat",
        "rename_chat",
        "delete_chat",
        "search",
        "rate",
        "better_answer",
        "copy_reply",
        "regenerate",
        "edit_message",
        "filter",
        "memory",
        "toggle_memory",
    }
)


class ChatScreen(TurnActions, FeedbackActions, CheckActions, ConversationActions, ToolActions, Screen[None]):
    """Sidebar, chat view, prompt and status bar, and the conversation that is open."""

    AUTO_FOCUS = "#prompt"

    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+n", "new_chat", "New", show=False),  # the sidebar has its button; the footer needs the room
        Binding("f2", "rename_chat", "Rename", show=False),
        Binding("f8", "delete_chat", "Delete", show=False),
        Binding("ctrl+l", "filter", "Filter", show=False),
        Binding("ctrl+f", "search", "Search"),
        Binding("f3", "rate(1)", "Good"),
        Binding("f4", "rate(-1)", "Bad"),
        Binding("f5", "better_answer", "Better"),
        Binding("f6", "regenerate", "Regen", priority=True),  # the prompt (a TextArea) binds F6 and F7 too
        Binding("f7", "edit_message", "Edit", priority=True),
        Binding("f9", "copy_reply", "Copy"),
        Binding("ctrl+s", "why", "Why"),
        Binding("ctrl+r", "memory", "Memory", show=False),
        Binding("ctrl+g", "toggle_memory", "Memory on/off", show=False),
    ]

    def __init__(self, session: Session | None) -> None:
        super().__init__()
        self.session = session
        self.conversation_id: int | None = None
        self.stop_event: threading.Event | None = None
        self.idle = threading.Event()  # set while no generation thread runs (shutdown waits for it)
        self.idle.set()
        self.reply: Reply | None = None

    @property
    def store(self) -> Store:
        assert self.session is not None, "the session is not open yet"
        return self.session.store

    def attach(self, session: Session) -> None:
        """The app opened the session after the first frame: show its model and conversations."""
        self.session = session
        self.status.model = session.model_name
        self.status.state = "ready" if session.loaded else "loading model"
        self.status.memory = memory_state(session)
        self.attach_tools(session)
        self.refresh_sidebar()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.session is not None or action not in SESSION_ACTIONS

    # -- layout ---------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield Sidebar(id="sidebar")
            with Vertical(id="chat"):
                yield ChatView(id="messages")
                yield PromptInput(id="prompt")
        session = self.session
        if session is None:
            yield StatusBar("…", "starting", id="status")
        else:
            state = "ready" if session.loaded else "loading model"
            yield StatusBar(session.model_name, state, memory=memory_state(session), id="status")
        yield Footer()

    @property
    def chat(self) -> ChatView:
        return self.query_one(ChatView)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def sidebar(self) -> Sidebar:
        return self.query_one(Sidebar)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def generating(self) -> bool:
        return self.stop_event is not None

    def on_mount(self) -> None:
        if self.session is not None:
            self.attach_tools(self.session)
            self.refresh_sidebar()

    def shutdown(self, timeout: float = 30) -> None:
        """Stop a reply in progress and wait for its thread (closing the model under it could crash llama.cpp)."""
        if self.stop_event is not None:
            self.stop_event.set()  # the worker stores the partial reply and ends at the next chunk
        self.cancel_tool_questions(close=True)  # a turn waiting for "run this tool?" hears Cancel
        self.idle.wait(timeout)

    def fail(self, error: str) -> None:
        """Every error the user can meet ends here: one sentence, never a traceback."""
        self.notify(error, severity="error", markup=False, timeout=8)

    def refresh_sidebar(self) -> None:
        try:
            found = conversations.list_conversations(self.store, self.sidebar.filter_text)
        except AssistantError as exc:
            self.fail(str(exc))
            return
        self.sidebar.show(found, self.conversation_id)

    # -- the open conversation ------------------------------------------------------------------------------

    async def open_conversation(self, conversation_id: int | None) -> None:
        if self.generating:
            self.notify("Stop the reply first (Esc), then switch conversations.", severity="warning")
            self.sidebar.mark(self.conversation_id)
            return
        try:
            messages = conversations.messages(self.store, conversation_id) if conversation_id is not None else []
        except AssistantError as exc:
            self.fail(str(exc))
            return
        self.conversation_id = conversation_id
        await self.chat.show(messages)
        await self._show_recalled()
        self.sidebar.mark(conversation_id)
        self.prompt.focus()

    async def _show_recalled(self) -> None:
        """Under each loaded reply, what it was given from memory (as recorded when it was written)."""
        replies = {r.message_id: r for r in self.chat.replies if r.message_id is not None}
        if not replies:
            return
        try:
            found = recalled_for(self.store, replies)
        except AssistantError as exc:
            self.fail(str(exc))
            return
        for message_id, items in found.items():
            await replies[message_id].show_recalled(items)

    async def on_sidebar_conversation_selected(self, message: Sidebar.ConversationSelected) -> None:
        await self.open_conversation(message.conversation_id)

    async def on_sidebar_new_requested(self) -> None:
        await self.action_new_chat()

    def on_sidebar_filter_changed(self) -> None:
        self.refresh_sidebar()

    async def action_new_chat(self) -> None:
        await self.open_conversation(None)

    def action_filter(self) -> None:
        self.sidebar.query_one("#filter", Input).focus()
