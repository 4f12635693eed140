"""The scrolling chat: the messages of one conversation, replies appended in place while they stream."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from storage.records import Message
from tui.widgets.message import Reply, UserMessage

WELCOME = "Start a conversation: type below and press Enter.  F1 lists the keys."


class ChatView(VerticalScroll, can_focus=False):
    """Messages of the current conversation. Not focusable, so the prompt keeps the keyboard."""

    def on_mount(self) -> None:
        self.anchor()  # follow a streaming reply to the bottom until the user scrolls up
        self.show_welcome()

    def show_welcome(self) -> None:
        self.mount(Static(Text(WELCOME, style="dim"), id="welcome"))

    async def show(self, messages: list[Message]) -> None:
        await self.remove_children()
        if not messages:
            self.show_welcome()
            return
        widgets = [
            UserMessage(m.content, m.id) if m.role == "user" else Reply(m.content, message=m)
            for m in messages
            if m.role in ("user", "assistant")
        ]
        await self.mount_all(widgets)
        self.scroll_end(animate=False, immediate=True)
        self.anchor()

    async def add_user(self, text: str) -> UserMessage:
        await self.query("#welcome").remove()
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
