"""Chat turns on the chat screen: send (Enter), stop (Esc), regenerate or retry (F6), edit and resend (F7).

Each turn runs in a thread worker that posts every chunk as a Message and checks a stop Event on every chunk, so
the UI never blocks and a stopped reply keeps what was written. A turn that fails says why in the transcript,
under the message or the reply, with a Retry button; the toast only repeats it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual import work
from textual.message import Message

from assistant import conversations
from assistant.errors import AssistantError, InputError, ModelError
from assistant.recalled import items_from_turn
from tui.widgets.message import Reply, UserMessage, incomplete_marker
from tui.widgets.notes import FailedTurn, for_tui
from tui.widgets.prompt import PromptInput

if TYPE_CHECKING:
    from assistant.turn import Turn
    from tui.screens.chat_host import ChatHost

StartTurn = Callable[[], "Turn"]


class TurnActions:
    """The turn actions of ChatScreen (a mixin: ``self`` is the chat screen)."""

    conversation_id: int | None
    stop_event: threading.Event | None
    reply: Reply | None

    class TurnStarted(Message):
        """``rerender``: the turn replaced earlier messages (regenerate, edit), so the transcript is redrawn."""

        def __init__(self, turn: Turn, rerender: bool) -> None:
            super().__init__()
            self.turn = turn
            self.rerender = rerender

    class ReplyChunk(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class TurnEnded(Message):
        """The turn is over: ``turn`` is None when it failed before the reply began."""

        def __init__(self, turn: Turn | None, error: str | None, text: str = "", rerender: bool = False) -> None:
            super().__init__()
            self.turn = turn
            self.error = error
            self.text = text
            self.rerender = rerender

    def can_start_turn(self: ChatHost) -> bool:
        if self.generating:
            self.notify("A reply is still being written; wait for it or press Esc to stop it.", severity="warning")
            return False
        if self.session is None:
            self.notify("Still starting up; your message stays in the box. Press Enter again in a moment.")
            return False
        return True

    async def on_prompt_input_submitted(self: ChatHost, event: PromptInput.Submitted) -> None:
        if not self.can_start_turn():
            return
        from assistant.session import validate_message

        try:
            text = validate_message(event.text)
        except InputError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        # Only what was sent leaves the box: keys typed after Enter may already be in it (Alt+Enter in tmux
        # arrives as one burst with what follows).
        now = self.prompt.text
        self.prompt.clear()
        if now.startswith(event.text) and len(now) > len(event.text):
            self.prompt.insert(now[len(event.text) :])
        await self.chat.add_user(text)
        session, conversation_id = self.session, self.conversation_id
        assert session is not None
        self.begin_turn(lambda: session.start_turn(text, conversation_id), text=text)

    def begin_turn(self: ChatHost, start: StartTurn, *, text: str = "", rerender: bool = False) -> None:
        self.stop_event = threading.Event()
        self.idle.clear()
        loaded = self.session is not None and self.session.loaded
        self.status.state = "generating" if loaded else "loading model"
        self.generate(start, self.stop_event, text, rerender)

    @work(thread=True, exclusive=True, group="generate")
    def generate(self: ChatHost, start: StartTurn, stop: threading.Event, text: str, rerender: bool) -> None:
        try:
            self.run_turn(start, stop, text, rerender)
        finally:
            self.idle.set()

    def run_turn(self: ChatHost, start: StartTurn, stop: threading.Event, text: str, rerender: bool) -> None:
        # The session stores the user's message before anything else can fail, so an error loses nothing.
        try:
            turn = start()
        except ModelError as exc:  # the model could not load: here Ctrl+O helps, not a CLI command
            self.post_message(TurnActions.TurnEnded(None, for_tui(str(exc)), text, rerender))
            return
        except AssistantError as exc:
            self.post_message(TurnActions.TurnEnded(None, str(exc), text, rerender))
            return
        except Exception as exc:
            reason = f"The reply could not start ({type(exc).__name__}: {exc})."
            self.post_message(TurnActions.TurnEnded(None, reason, text, rerender))
            return
        self.post_message(TurnActions.TurnStarted(turn, rerender))
        error: str | None = None
        try:
            for chunk in turn.stream(stop):
                if chunk.text:
                    self.post_message(TurnActions.ReplyChunk(chunk.text))
        except AssistantError as exc:
            error = str(exc)
        except Exception as exc:
            error = f"The reply failed ({type(exc).__name__}: {exc}); the partial reply was kept."
        self.post_message(TurnActions.TurnEnded(turn, error))

    async def on_turn_actions_turn_started(self: ChatHost, message: TurnActions.TurnStarted) -> None:
        turn = message.turn
        # On a CPU a long prompt takes seconds to read before the first word: say so rather than look stuck.
        self.status.state = "reading prompt"
        self.status.model = turn.backend.name
        self.status.adapter = turn.adapter or "none"  # as swapped in at the start of this turn
        self.conversation_id = turn.conversation_id
        if message.rerender:  # the replaced messages leave the transcript; the reply row may already exist
            shown = conversations.messages(self.store, turn.conversation_id)
            await self.chat.show([m for m in shown if m.id <= turn.user_message_id], answering=True)
        else:
            await self.chat.clear_failures()
            asked = self.chat.query(UserMessage)
            if asked:
                asked.last().message_id = turn.user_message_id
        self.refresh_sidebar()
        self.reply = reply = await self.chat.add_reply(turn.backend.name)
        if turn.notice:
            self.notify(turn.notice, severity="warning", markup=False, timeout=8)
            await reply.show_notice(turn.notice)
        await reply.show_recalled(items_from_turn(turn.memories, turn.facts))

    async def on_turn_actions_reply_chunk(self: ChatHost, message: TurnActions.ReplyChunk) -> None:
        if self.status.state == "reading prompt":
            self.status.state = "generating"
        if self.reply is not None:
            await self.reply.write(message.text)

    async def on_turn_actions_turn_ended(self: ChatHost, message: TurnActions.TurnEnded) -> None:
        turn, reply = message.turn, self.reply
        self.stop_event, self.reply = None, None
        if turn is not None and turn.result is not None and reply is not None:
            result = turn.result
            marker = incomplete_marker(result.finish_reason, result.finish_reason in ("stop", "length"))
            error = message.error if result.finish_reason == "error" else None
            await reply.finish(
                message_id=result.message_id, tokens_per_s=result.tokens_per_s, marker=marker, error=error
            )
            await self.show_verdict(reply, result)
            await self.show_tool_results(reply, turn)
            if result.tokens_per_s:
                self.status.tokens_per_s = result.tokens_per_s
            self.status.state = "stopped" if result.finish_reason == "cancelled" else "ready"
        if message.error:
            self.status.state = "error"
            self.fail(message.error)
            if turn is None:
                await self.after_failed_start(message.text, message.error, message.rerender)
        self.refresh_sidebar()

    async def after_failed_start(self: ChatHost, text: str, error: str, rerender: bool) -> None:
        """The turn failed before its reply: the message is stored (its conversation stays open, the error shows
        under it) or, if the store itself failed, the text goes back into the prompt so it is never lost."""
        if rerender:  # regenerate, edit or retry: show the conversation as the store now has it
            await self.open_conversation(self.conversation_id)
            await self.chat.clear_failures()  # the derived "no reply" gives way to the real reason
            await self.chat.add_failure(error)
            return
        try:
            newest = conversations.list_conversations(self.store, limit=1)
            cid = self.conversation_id if self.conversation_id is not None else (newest[0].id if newest else None)
            last = conversations.messages(self.store, cid)[-1:] if cid is not None else []
        except AssistantError:
            last, cid = [], None
        if last and last[0].role == "user" and last[0].content == text:
            self.conversation_id = cid
            await self.chat.add_failure(error)
            return
        await self.chat.query(UserMessage).last().remove()
        typed_since = self.prompt.text
        self.prompt.load_text(text + typed_since)

    def action_stop(self: ChatHost) -> None:
        if self.stop_event is not None:
            self.stop_event.set()
            self.cancel_tool_questions()

    # -- regenerate, retry, edit ----------------------------------------------------------------------------

    def action_regenerate(self: ChatHost) -> None:
        """F6: a new reply for the last message: retried if its turn failed or was stopped, else regenerated."""
        if not self.can_start_turn() or self.session is None:
            return
        cid = self.conversation_id
        try:
            last = conversations.messages(self.store, cid)[-1:] if cid is not None else []
        except AssistantError as exc:
            self.fail(str(exc))
            return
        if cid is None or not last:
            self.notify("Nothing to regenerate yet: send a message first.", severity="warning")
            return
        session = self.session
        if last[0].role == "user" or not last[0].complete:
            self.begin_turn(lambda: session.retry(cid), rerender=True)
        else:
            reply_id = last[0].id
            self.begin_turn(lambda: session.regenerate(reply_id), rerender=True)

    async def on_failed_turn_retry_requested(self: ChatHost, message: FailedTurn.RetryRequested) -> None:
        self.action_regenerate()

    def action_edit_message(self: ChatHost) -> None:
        """F7: edit a message you sent (the one above the picked reply, else the last) and send it again."""
        if not self.can_start_turn() or self.session is None:
            return
        picked = self.chat.target_reply()
        picked = picked if picked is not None and picked.has_class("-selected") else None
        chosen: UserMessage | None = None
        for widget in self.chat.children:
            if widget is picked:
                break
            if isinstance(widget, UserMessage) and widget.message_id is not None:
                chosen = widget
        if chosen is None:
            self.notify("Nothing to edit yet: send a message first.", severity="warning")
            return
        from tui.screens.edit_message import EditMessageScreen

        session = self.session
        message_id = chosen.message_id
        assert message_id is not None

        def done(text: str | None) -> None:
            if text is None or not self.can_start_turn():
                return
            self.begin_turn(lambda: session.edit_and_resend(message_id, text), text=text, rerender=True)

        self.app.push_screen(EditMessageScreen(chosen.content), done)
