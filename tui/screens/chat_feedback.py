"""Feedback on a reply, from the chat screen: F3 / F4 thumbs up / down (again to clear), F5 a better answer,
F9 copy. The reply is the one the user clicked, else the last one; the feedback is stored through
``assistant.feedback``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant import feedback
from assistant.errors import AssistantError
from tui.widgets.message import Reply

if TYPE_CHECKING:
    from tui.screens.chat_host import ChatHost

# True today: `history show` and the exports carry it. (No learning job ships yet, so none is promised.)
BETTER_ANSWER_SAVED = "Better answer saved with the reply (`assistant history show` and exports include it)."


class FeedbackActions:
    """The feedback actions of ChatScreen (a mixin: ``self`` is the chat screen)."""

    def on_reply_clicked(self: ChatHost, message: Reply.Clicked) -> None:
        self.chat.select(message.reply)

    def target_reply(self: ChatHost) -> Reply | None:
        """The finished reply the feedback is for, or None (after telling the user there is none)."""
        reply = self.chat.target_reply()
        if reply is None or reply.message_id is None:
            self.notify("There is no finished reply here yet.", severity="warning")
            return None
        return reply

    def action_rate(self: ChatHost, rating: int) -> None:
        reply = self.target_reply()
        if reply is None or reply.message_id is None:
            return
        try:
            reply.rating = feedback.toggle_rating(self.store, reply.message_id, reply.rating, rating)
        except AssistantError as exc:
            self.fail(str(exc))
            return
        reply.refresh_meta()

    def action_better_answer(self: ChatHost) -> None:
        reply = self.target_reply()
        if reply is None:
            return
        from tui.screens.better_answer import BetterAnswerScreen

        def done(text: str | None) -> None:
            if text is None or reply.message_id is None:
                return
            try:
                feedback.save_better_answer(self.store, reply.message_id, text)
            except AssistantError as exc:
                self.fail(str(exc))
                return
            reply.better_answer = text
            reply.refresh_meta()
            self.notify(BETTER_ANSWER_SAVED, markup=False)

        self.app.push_screen(BetterAnswerScreen(reply.content, reply.better_answer), done)

    def action_copy_reply(self: ChatHost) -> None:
        reply = self.target_reply()
        if reply is None:
            return
        self.app.copy_to_clipboard(reply.content)
        self.notify("Reply copied to the clipboard.")
