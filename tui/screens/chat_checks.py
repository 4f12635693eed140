"""The checker on the chat screen: a finished turn's reply shown as stored with its badge, and Ctrl+S (or a click
on the badge) says why. The verdict comes with the turn's result (``result.checks``, ``result.badge``); an old
conversation's from its stored messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.checks import ReplyCheck
from tui.widgets.check_badge import CheckBadge
from tui.widgets.message import Reply

if TYPE_CHECKING:
    from assistant.turn import TurnResult
    from tui.screens.chat_host import ChatHost

NOT_CHECKED = "This reply was not checked (it was written before the checker, or with the checker off)."


class CheckActions:
    """The checker's part of ChatScreen (a mixin: ``self`` is the chat screen)."""

    @staticmethod
    def verdict_of(result: TurnResult) -> tuple[str | None, ReplyCheck | None]:
        """The badge and verdict of a finished turn (none when the checker is off)."""
        if result.checks is None:
            return None, None
        check = ReplyCheck.from_dict(result.checks)
        return result.badge or check.badge, check

    async def show_verdict(self: ChatHost, reply: Reply, result: TurnResult) -> None:
        """Re-render the finished reply from the text that was stored, with its highlights and badge."""
        badge, check = self.verdict_of(result)
        await reply.show_check(result.reply, badge, check)

    def action_why(self: ChatHost) -> None:
        """Ctrl+S: why the picked reply (else the last) has its badge."""
        reply = self.chat.target_reply()
        if reply is None or reply.message_id is None:
            self.notify("There is no finished reply here yet.", severity="warning")
            return
        self.open_why(reply)

    def open_why(self: ChatHost, reply: Reply) -> None:
        if reply.badge is None:
            self.notify(NOT_CHECKED, markup=False)
            return
        from tui.screens.check_why import CheckWhyScreen

        self.app.push_screen(CheckWhyScreen(reply.badge, reply.check))

    def on_check_badge_clicked(self: ChatHost, message: CheckBadge.Clicked) -> None:
        reply = next((a for a in message.badge.ancestors if isinstance(a, Reply)), None)
        if reply is not None:
            self.open_why(reply)
