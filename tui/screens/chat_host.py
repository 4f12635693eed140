"""What the chat screen's action mixins (``chat_turns``, ``chat_feedback``, ``chat_conversations``) may use of
the screen: the type of their ``self``, so each checks against this instead of importing the screen."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from textual.app import App
    from textual.message import Message
    from textual.notifications import SeverityLevel

    from assistant.checks import ReplyCheck
    from assistant.session import Session
    from assistant.turn import Turn, TurnResult
    from storage.db import Store
    from tui.widgets.chat_view import ChatView
    from tui.widgets.message import Reply
    from tui.widgets.prompt import PromptInput
    from tui.widgets.status_bar import StatusBar


class ChatHost(Protocol):
    session: Session | None
    conversation_id: int | None
    stop_event: threading.Event | None
    idle: threading.Event
    reply: Reply | None

    @property
    def app(self) -> App[Any]: ...
    @property
    def store(self) -> Store: ...
    @property
    def chat(self) -> ChatView: ...
    @property
    def status(self) -> StatusBar: ...
    @property
    def prompt(self) -> PromptInput: ...
    @property
    def generating(self) -> bool: ...

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...
    def fail(self, error: str) -> None: ...
    def post_message(self, message: Message) -> bool: ...
    def refresh_sidebar(self) -> None: ...
    async def open_conversation(self, conversation_id: int | None) -> None: ...

    # shared between the mixins
    def can_start_turn(self) -> bool: ...
    def begin_turn(self, start: Callable[[], Turn], *, text: str = "", rerender: bool = False) -> None: ...
    def generate(self, start: Callable[[], Turn], stop: threading.Event, text: str, rerender: bool) -> object: ...
    def run_turn(self, start: Callable[[], Turn], stop: threading.Event, text: str, rerender: bool) -> None: ...
    async def after_failed_start(self, text: str, error: str, rerender: bool) -> None: ...
    def target_reply(self) -> Reply | None: ...
    def action_regenerate(self) -> None: ...
    @staticmethod
    def verdict_of(result: TurnResult) -> tuple[str | None, ReplyCheck | None]: ...
    async def show_verdict(self, reply: Reply, result: TurnResult) -> None: ...
    def open_why(self, reply: Reply) -> None: ...
