"""The main screen: conversations on the left, the chat on the right, the reply streaming from a worker thread.

Generation runs in a thread worker that posts each chunk as a Message and checks a stop Event on every chunk
(Esc), so the UI never blocks and a stopped reply keeps what was written.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input

from assistant.errors import AssistantError, InputError
from tui.widgets.chat_view import ChatView
from tui.widgets.message import Reply, UserMessage, incomplete_marker
from tui.widgets.prompt import PromptInput
from tui.widgets.recalled import items_from_store, items_from_turn
from tui.widgets.sidebar import Sidebar
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:  # imported for real once the app has opened them, after the first frame
    from assistant.session import Session, Turn
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
        "filter",
        "memory",
        "toggle_memory",
    }
)


def memory_state(session: Session) -> str:
    """The status bar's word for the session's memory."""
    return "on" if session.use_memory else "off"


class ChatScreen(Screen[None]):
    """Sidebar, chat view, prompt and status bar; owns the chat turns and the feedback on replies."""

    AUTO_FOCUS = "#prompt"

    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("f2", "rename_chat", "Rename", show=False),
        Binding("f8", "delete_chat", "Delete", show=False),
        Binding("ctrl+l", "filter", "Filter", show=False),
        Binding("ctrl+f", "search", "Search"),
        Binding("f3", "rate(1)", "Good"),
        Binding("f4", "rate(-1)", "Bad"),
        Binding("f5", "better_answer", "Better"),
        Binding("f9", "copy_reply", "Copy"),
        Binding("ctrl+r", "memory", "Memory", show=False),
        Binding("ctrl+g", "toggle_memory", "Memory on/off", show=False),
    ]

    # -- messages from the generation thread ----------------------------------------------------------------

    class TurnStarted(Message):
        def __init__(self, turn: Turn) -> None:
            super().__init__()
            self.turn = turn

    class ReplyChunk(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class TurnEnded(Message):
        """The turn is over: ``turn`` is None when it failed before the reply began."""

        def __init__(self, turn: Turn | None, error: str | None, text: str = "") -> None:
            super().__init__()
            self.turn = turn
            self.error = error
            self.text = text

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
            self.refresh_sidebar()

    def shutdown(self, timeout: float = 30) -> None:
        """Stop a reply in progress and wait for its thread (closing the model under it could crash llama.cpp)."""
        if self.stop_event is not None:
            self.stop_event.set()  # the worker stores the partial reply and ends at the next chunk
        self.idle.wait(timeout)

    def fail(self, error: str) -> None:
        """Every error the user can meet ends here: one sentence, never a traceback."""
        self.notify(error, severity="error", markup=False, timeout=8)

    def refresh_sidebar(self) -> None:
        try:
            conversations = self.store.list_conversations(self.sidebar.filter_text)
        except AssistantError as exc:
            self.fail(str(exc))
            return
        self.sidebar.show(conversations, self.conversation_id)

    # -- a chat turn ----------------------------------------------------------------------------------------

    @on(PromptInput.Submitted)
    async def send(self, event: PromptInput.Submitted) -> None:
        if self.generating:
            self.notify("A reply is still being written; wait for it or press Esc to stop it.", severity="warning")
            return
        if self.session is None:
            self.notify("Still starting up; your message stays in the box. Press Enter again in a moment.")
            return
        from assistant.session import validate_message

        try:
            text = validate_message(event.text)
        except InputError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        self.prompt.clear()
        await self.chat.add_user(text)
        self.stop_event = threading.Event()
        self.idle.clear()
        self.status.state = "generating" if self.session.loaded else "loading model"  # type: ignore[union-attr]
        self.generate(text, self.conversation_id, self.stop_event)

    @work(thread=True, exclusive=True, group="generate")
    def generate(self, text: str, conversation_id: int | None, stop: threading.Event) -> None:
        try:
            self._generate(text, conversation_id, stop)
        finally:
            self.idle.set()

    def _generate(self, text: str, conversation_id: int | None, stop: threading.Event) -> None:
        # start_turn stores the user's message before anything else can fail, so an error loses nothing.
        try:
            assert self.session is not None
            turn = self.session.start_turn(text, conversation_id)
        except AssistantError as exc:
            self.post_message(self.TurnEnded(None, str(exc), text))
            return
        except Exception as exc:
            reason = f"The reply could not start ({type(exc).__name__}: {exc})."
            self.post_message(self.TurnEnded(None, reason, text))
            return
        self.post_message(self.TurnStarted(turn))
        error: str | None = None
        try:
            for chunk in turn.stream(stop):
                if chunk.text:
                    self.post_message(self.ReplyChunk(chunk.text))
        except AssistantError as exc:
            error = str(exc)
        except Exception as exc:
            error = f"The reply failed ({type(exc).__name__}: {exc}); the partial reply was kept."
        self.post_message(self.TurnEnded(turn, error))

    async def on_chat_screen_turn_started(self, message: TurnStarted) -> None:
        turn = message.turn
        # On a CPU a long prompt takes seconds to read before the first word: say so rather than look stuck.
        self.status.state = "reading prompt"
        self.status.model = turn.backend.name
        if turn.notice:
            self.notify(turn.notice, severity="warning", markup=False, timeout=8)
        if self.conversation_id != turn.conversation_id:
            self.conversation_id = turn.conversation_id
        self.refresh_sidebar()
        self.reply = await self.chat.add_reply(turn.backend.name)
        await self.reply.show_recalled(items_from_turn(turn.memories, turn.facts))

    async def on_chat_screen_reply_chunk(self, message: ReplyChunk) -> None:
        if self.status.state == "reading prompt":
            self.status.state = "generating"
        if self.reply is not None:
            await self.reply.write(message.text)

    async def on_chat_screen_turn_ended(self, message: TurnEnded) -> None:
        turn, reply = message.turn, self.reply
        self.stop_event, self.reply = None, None
        if turn is not None and turn.result is not None and reply is not None:
            result = turn.result
            marker = incomplete_marker(result.finish_reason, result.finish_reason in ("stop", "length"))
            await reply.finish(message_id=result.message_id, tokens_per_s=result.tokens_per_s, marker=marker)
            if result.tokens_per_s:
                self.status.tokens_per_s = result.tokens_per_s
            self.status.state = "stopped" if result.finish_reason == "cancelled" else "ready"
        if message.error:
            self.status.state = "error"
            self.fail(message.error)
            if turn is None:
                await self._after_failed_start(message.text)
        self.refresh_sidebar()

    async def _after_failed_start(self, text: str) -> None:
        """The turn failed before its reply: the message is stored (keep its conversation open) or, if the
        store itself failed, it goes back into the prompt so the user's text is never lost."""
        try:
            newest = self.store.list_conversations(limit=1)
            cid = self.conversation_id if self.conversation_id is not None else (newest[0].id if newest else None)
            last = self.store.messages(cid)[-1:] if cid is not None else []
        except AssistantError:
            last, cid = [], None
        if last and last[0].role == "user" and last[0].content == text:
            self.conversation_id = cid
            return
        await self.chat.query(UserMessage).last().remove()
        if not self.prompt.text:
            self.prompt.load_text(text)

    def action_stop(self) -> None:
        if self.stop_event is not None:
            self.stop_event.set()

    # -- conversations --------------------------------------------------------------------------------------

    async def open_conversation(self, conversation_id: int | None) -> None:
        if self.generating:
            self.notify("Stop the reply first (Esc), then switch conversations.", severity="warning")
            self.sidebar.mark(self.conversation_id)
            return
        try:
            messages = self.store.messages(conversation_id) if conversation_id is not None else []
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
            found = items_from_store(self.store, replies)
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

    def action_rename_chat(self) -> None:
        if self.conversation_id is None:
            self.notify("Nothing to rename yet: this conversation is empty.", severity="warning")
            return
        from tui.screens.rename import RenameScreen

        conversation_id = self.conversation_id
        try:
            title = self.store.get_conversation(conversation_id).title
        except AssistantError as exc:
            self.fail(str(exc))
            return

        def done(new_title: str | None) -> None:
            if not new_title:
                return
            try:
                self.store.rename_conversation(conversation_id, new_title)
            except AssistantError as exc:
                self.fail(str(exc))
            self.refresh_sidebar()

        self.app.push_screen(RenameScreen(title), done)

    def action_delete_chat(self) -> None:
        if self.conversation_id is None:
            self.notify("Nothing to delete: this conversation is empty.", severity="warning")
            return
        if self.generating:
            self.notify("Stop the reply first (Esc), then delete.", severity="warning")
            return
        from tui.screens.confirm import ConfirmScreen

        conversation_id = self.conversation_id
        try:
            title = self.store.get_conversation(conversation_id).title
        except AssistantError as exc:
            self.fail(str(exc))
            return

        async def done(confirmed: bool | None) -> None:
            if not confirmed:
                return
            try:
                self.store.delete_conversation(conversation_id)
            except AssistantError as exc:
                self.fail(str(exc))
                return
            await self.open_conversation(None)
            self.refresh_sidebar()
            self.notify("Conversation deleted.")

        self.app.push_screen(ConfirmScreen(f"Delete the conversation “{title}” and all its messages?"), done)

    def action_search(self) -> None:
        from tui.screens.search import SearchScreen

        async def done(conversation_id: int | None) -> None:
            if conversation_id is not None:
                await self.open_conversation(conversation_id)

        self.app.push_screen(SearchScreen(self.store), done)

    # -- feedback on a reply --------------------------------------------------------------------------------

    def on_reply_clicked(self, message: Reply.Clicked) -> None:
        self.chat.select(message.reply)

    def _target(self) -> Reply | None:
        reply = self.chat.target_reply()
        if reply is None or reply.message_id is None:
            self.notify("There is no finished reply here yet.", severity="warning")
            return None
        return reply

    def action_rate(self, rating: int) -> None:
        reply = self._target()
        if reply is None:
            return
        new = None if reply.rating == rating else rating  # pressing the same key again clears the rating
        try:
            self.store.set_feedback(reply.message_id, rating=new)  # type: ignore[arg-type]
        except AssistantError as exc:
            self.fail(str(exc))
            return
        reply.rating = new
        reply.refresh_meta()

    def action_better_answer(self) -> None:
        reply = self._target()
        if reply is None:
            return
        from tui.screens.better_answer import BetterAnswerScreen

        def done(text: str | None) -> None:
            if text is None or reply.message_id is None:
                return
            try:
                self.store.set_feedback(reply.message_id, better_answer=text)
            except AssistantError as exc:
                self.fail(str(exc))
                return
            reply.better_answer = text
            reply.refresh_meta()
            self.notify("Better answer saved; the nightly learning job will use it.")

        self.app.push_screen(BetterAnswerScreen(reply.content, reply.better_answer), done)

    def action_copy_reply(self) -> None:
        reply = self._target()
        if reply is None:
            return
        self.app.copy_to_clipboard(reply.content)
        self.notify("Reply copied to the clipboard.")

    # -- memory ---------------------------------------------------------------------------------------------

    def action_memory(self) -> None:
        if self.session is None:
            self.notify("Still starting up; open the memory in a moment.")
            return
        from tui.screens.memory import MemoryScreen

        async def done(forgot: bool | None) -> None:
            # A forgotten message is gone from its conversation too: show the conversation as it now is.
            if forgot and not self.generating:
                await self.open_conversation(self.conversation_id)
                self.refresh_sidebar()

        self.app.push_screen(MemoryScreen(self.session), done)

    def action_toggle_memory(self) -> None:
        session = self.session
        if session is None:
            self.notify("Still starting up; toggle the memory in a moment.")
            return
        from assistant.config import save_setting

        session.use_memory = not session.use_memory
        self.status.memory = memory_state(session)
        if session.use_memory:
            self.notify("Memory on: replies recall earlier conversations and remembered facts.")
        else:
            self.notify("Memory off: replies recall nothing and use no remembered facts.")
        try:
            save_setting("memory", session.use_memory, home=session.home)
        except AssistantError as exc:
            self.fail(f"{exc} Memory stays {memory_state(session)} until the assistant closes.")
