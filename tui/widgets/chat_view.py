"""The scrolling chat: the messages of one conversation, replies appended in place while they stream."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from storage.records import Message
from tui.widgets.message import Reply, UserMessage
from tui.widgets.notes import NO_REPLY, TRIMMED_HISTORY, FailedTurn

WELCOME = "Start a conversation: type below and press Enter.  F1 lists the keys."


class ChatView(VerticalScroll, can_focus=False):
    """Messages of the current conversation. Not focusable, so the prompt keeps the keyboard."""

    def on_mount(self) -> None:
        self.anchor()  # follow a streaming reply to the bottom until the user scrolls up
        self.show_welcome()

    def show_welcome(self) -> None:
        self.mount(Static(Text(WELCOME, style="dim"), id="welcome"))

    async def show(self, messages: list[Message], *, answering: bool = False) -> None:
        """Show a conversation; ``answering``: its last message is being answered now (no failure shown)."""
        await self.remove_children()
        if not messages:
            self.show_welcome()
            return
        widgets: list[Static | UserMessage | Reply | FailedTurn] = []
        asked: Message | None = None
        for m in messages:
            if m.role == "user":
                widgets.append(UserMessage(m.content, m.id, trimmed=m.context_trimmed))
                asked = m
            elif m.role == "assistant":
                reply = Reply(m.content, message=m)
                if m.context_trimmed and not (asked and asked.context_trimmed):
                    reply.notice = TRIMMED_HISTORY
                widgets.append(reply)
        shown = [m for m in messages if m.role in ("user", "assistant")]
        if shown and shown[-1].role == "user" and not answering:  # its turn never got a reply: say so, offer retry
            widgets.append(FailedTurn(NO_REPLY))
        await self.mount_all(widgets)
        self.scroll_end(animate=False, immediate=True)
        self.anchor()

    async def add_user(self, text: str) -> UserMessage:
        await self.query("#welcome").remove()
        await self.clear_failures()
        widget = UserMessage(text)
        await self.mount(widget)
        self.anchor()
        return widget

    async def add_reply(self, model: str) -> Reply:
        reply = Reply(model=model)
        await self.mount(reply)
        reply.start_stream()
        self.anchor()
        return reply

    async def add_failure(self, error: str) -> FailedTurn:
        """The turn failed before its reply began: say why under the user's message."""
        widget = FailedTurn(error)
        await self.mount(widget)
        self.anchor()
        return widget

    async def clear_failures(self) -> None:
        """A new turn answers what failed before: the failed-turn blocks under user messages go."""
        await self.query("ChatView > FailedTurn").remove()

    @property
    def replies(self) -> list[Reply]:
        return list(self.query(Reply))

    def target_reply(self) -> Reply | None:
        """The reply the user picked (by clicking it), else the last one."""
        selected = [r for r in self.replies if r.has_class("-selected")]
        if selected:
            return selected[-1]
        replies = self.replies
        return replies[-1] if replies else None

    def select(self, reply: Reply) -> None:
        for other in self.replies:
            other.set_class(other is reply and not reply.has_class("-selected"), "-selected")
