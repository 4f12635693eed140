"""One message in the chat: a meta line and a body (plain text for the user, Markdown for replies)."""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message as TextualMessage
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from assistant.checks import ReplyCheck
from assistant.recalled import RecalledItem
from storage.records import Message
from tui.widgets.check_badge import CheckBadge, valid_badge
from tui.widgets.checked_markdown import CheckedMarkdown, highlights, mark
from tui.widgets.notes import TRIMMED_MESSAGE, FailedTurn, TurnNotice
from tui.widgets.recalled import Recalled
from tui.widgets.tool_result import ToolResultView, results_of, views_for

# A 200,000-character paste is stored in full, but laying it all out would stall the terminal.
SHOWN_USER_CHARS = 4000
# What Markdown can swallow whole: a reply of only these ("#" lines, rules, bullets) renders as blank space.
MARKDOWN_SYNTAX = re.compile(r"[\s#*_\-=`>~|+]")


def renders_blank(text: str) -> bool:
    """True when Markdown would show nothing of a reply that is not empty (empty headings, rules, bullets)."""
    return bool(text) and not MARKDOWN_SYNTAX.sub("", text)


def incomplete_marker(finish_reason: str | None, complete: bool) -> str | None:
    """The marker of a reply that did not finish: stopped by the user, failed, or cut off by a crash."""
    if complete:
        return None
    if finish_reason == "cancelled":
        return "stopped"
    if finish_reason == "error":
        return "error"
    return "interrupted"


class UserMessage(Vertical):
    """What the user sent."""

    def __init__(self, content: str, message_id: int | None = None, *, trimmed: bool = False) -> None:
        super().__init__(classes="message user")
        self.content = content
        self.message_id = message_id
        self.trimmed = trimmed  # only its start and end reached the model

    def compose(self) -> ComposeResult:
        yield Static(Text("you", style="bold"), classes="meta")
        shown = self.content
        if len(shown) > SHOWN_USER_CHARS:
            hidden = len(shown) - SHOWN_USER_CHARS
            shown = f"{shown[:SHOWN_USER_CHARS]}\n… ({hidden:,} more characters, stored in full)"
        yield Static(Text(shown), classes="body")
        if self.trimmed:
            yield TurnNotice(TRIMMED_MESSAGE)


class Reply(Vertical):
    """A reply of the assistant; it can stream, be rated, get a better answer, be copied."""

    class Clicked(TextualMessage):
        def __init__(self, reply: Reply) -> None:
            super().__init__()
            self.reply = reply

    def __init__(self, content: str = "", *, model: str | None = None, message: Message | None = None) -> None:
        super().__init__(classes="message reply")
        self.content = content
        self.model = model or (message.model if message else None)
        self.message_id = message.id if message else None
        self.tokens_per_s = message.tokens_per_s if message else None
        self.marker = incomplete_marker(message.finish_reason, message.complete) if message else None
        self.rating = message.rating if message else None
        self.better_answer = message.better_answer if message else None
        failed = message is not None and message.finish_reason == "error"
        self.error: str | None = (message.error or "The reply failed.") if failed and message else None
        self.notice: str | None = None
        self.streaming = False
        self.recalled: list[RecalledItem] = []  # what the reply was given from memory
        self.tools = results_of(getattr(message, "tools", None))  # what its tools returned (ToolResult dicts)
        # The checker's verdict (None: never checked, e.g. older replies or the checker off).
        self.check = ReplyCheck.from_json(message.checks) if message else None
        self.badge = valid_badge(message.badge if message else None) or (self.check.badge if self.check else None)
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        yield Static(self.meta_text(), classes="meta")
        yield from views_for(self.tools, self.content)  # above the text: the tools ran before it was written
        yield self._body()
        if self.badge:
            yield CheckBadge(self.badge, self.check)
        if self.notice:
            yield TurnNotice(self.notice)
        if self.error:
            yield FailedTurn(self.error)
        if self.recalled:
            yield Recalled(self.recalled)

    def _body(self) -> Static | Markdown:
        if renders_blank(self.content):  # show what the model wrote rather than blank space
            return Static(Text(self.content), classes="body plain")
        return CheckedMarkdown(mark(self.content, highlights(self.check)), classes="body")

    async def show_check(self, text: str, badge: str | None, check: ReplyCheck | None) -> None:
        """The turn is over: show the reply as stored (the checker may have masked more at its end), its
        flagged spans highlighted, and its badge."""
        self.check = check
        self.badge = valid_badge(badge) or (check.badge if check else None)
        if text != self.content or highlights(check):
            self.content = text
            old = self.query_one(".body")
            await self.mount(self._body(), after=old)
            await old.remove()
        await self.query(CheckBadge).remove()
        if self.badge:
            await self.mount(CheckBadge(self.badge, check), after=self.query_one(".body"))

    async def show_notice(self, text: str | None) -> None:
        """Say under the reply what the user should know about its turn (kept in the transcript)."""
        self.notice = text
        await self.query(TurnNotice).remove()
        if text:
            await self.mount(TurnNotice(text), after=self.query(".body, CheckBadge").last())

    async def show_tools(self, results: list[dict[str, object]]) -> None:
        """Show what the reply's tools returned (ToolResult dicts), above its text."""
        self.tools = [dict(r) for r in results]
        await self.query(ToolResultView).remove()
        if self.tools:
            await self.mount_all(views_for(self.tools, self.content), before=self.query_one(".body"))

    async def show_recalled(self, items: list[RecalledItem]) -> None:
        """Show (under the body, collapsed) the memories this reply was given."""
        self.recalled = list(items)
        await self.query(Recalled).remove()
        if self.recalled:
            await self.mount(Recalled(self.recalled))

    def meta_text(self) -> Text:
        text = Text()
        text.append("assistant", style="bold")
        if self.model:
            text.append(f" · {self.model}", style="dim")
        if self.streaming:
            text.append(" · writing…", style="cyan")
        if self.tokens_per_s:
            text.append(f" · {self.tokens_per_s:.1f} tok/s", style="dim")
        if self.marker:
            text.append(f" · {self.marker}", style="bold magenta" if self.marker == "stopped" else "bold red")
        if self.rating == 1:
            text.append(" · rated good", style="green")
        elif self.rating == -1:
            text.append(" · rated bad", style="red")
        if self.better_answer:
            text.append(" · better answer saved", style="green")
        if not self.streaming and self.message_id is not None and not self.content.strip():
            text.append(" · empty: the model wrote nothing", style="bold yellow")
        return text

    def refresh_meta(self) -> None:
        self.query_one(".meta", Static).update(self.meta_text())

    def start_stream(self) -> None:
        self.streaming = True
        self.refresh_meta()

    async def write(self, fragment: str) -> None:
        self.content += fragment
        if self._stream is None:
            # Made on the first fragment: a stream stopped before its task ever ran ends that task cancelled, and
            # awaiting it would cancel the caller, the chat screen's message loop (an empty reply froze the UI).
            self._stream = Markdown.get_stream(self.query_one(Markdown))
        await self._stream.write(fragment)

    async def finish(
        self, *, message_id: int | None, tokens_per_s: float | None, marker: str | None, error: str | None = None
    ) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.streaming = False
        self.message_id = message_id
        self.tokens_per_s = tokens_per_s
        self.marker = marker
        self.refresh_meta()
        if renders_blank(self.content):  # show what the model wrote rather than blank space
            body = self.query_one(".body")
            await self.mount(Static(Text(self.content), classes="body plain"), after=body)
            await body.remove()
        if error:
            self.error = error
            await self.mount(FailedTurn(error), after=self.query(".body, CheckBadge, TurnNotice").last())

    def on_click(self) -> None:
        self.post_message(self.Clicked(self))
