"""The assistant's terminal UI: conversations on the left, the chat on the right, the model in a worker thread.

The first frame never waits for the model: loading and generation run in thread workers that talk back through
Messages, and generation checks a stop Event on every chunk (Esc), so the UI never blocks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input

from assistant.config import Settings, load_settings, save_setting
from assistant.errors import AssistantError, InputError
from assistant.session import Session, Turn, validate_message
from storage.db import Store, open_store
from tui.widgets.chat_view import ChatView
from tui.widgets.message import Reply, incomplete_marker
from tui.widgets.prompt import PromptInput
from tui.widgets.sidebar import Sidebar
from tui.widgets.status_bar import StatusBar

THEMES = {"dark": "textual-dark", "light": "textual-light"}

# Actions that only make sense on the main screen (not while a dialog is open).
MAIN_ACTIONS = frozenset(
    {
        "new_chat",
        "rename_chat",
        "delete_chat",
        "filter",
        "search",
        "rate",
        "better_answer",
        "copy_reply",
        "switch_model",
        "stop",
        "toggle_theme",
    }
)


class AssistantApp(App[None]):
    """A private local chat assistant."""

    TITLE = "assistant"
    CSS_PATH = "app.tcss"
    AUTO_FOCUS = "#prompt"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("f1", "help", "Help"),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("f2", "rename_chat", "Rename", show=False),
        Binding("f8", "delete_chat", "Delete", show=False),
        Binding("ctrl+l", "filter", "Filter", show=False),
        Binding("ctrl+f", "search", "Search"),
        Binding("f3", "rate(1)", "Good"),
        Binding("f4", "rate(-1)", "Bad"),
        Binding("f5", "better_answer", "Better"),
        Binding("f9", "copy_reply", "Copy"),
        Binding("ctrl+o", "switch_model", "Model"),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
    ]

    # -- messages from the worker threads -------------------------------------------------------------------

    class ModelLoaded(Message):
        def __init__(self, error: str | None) -> None:
            super().__init__()
            self.error = error

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

        def __init__(self, turn: Turn | None, error: str | None) -> None:
            super().__init__()
            self.turn = turn
            self.error = error

    def __init__(
        self, session: Session | None = None, store: Store | None = None, settings: Settings | None = None
    ) -> None:
        super().__init__()
        self._owns_session = session is None
        self._owns_store = store is None and session is None
        if session is not None:
            store = store or session.store
            settings = settings or session.settings
        self.settings = settings or load_settings()
        self.store = store or open_store()
        self.session = session or Session(self.store, self.settings)
        self.conversation_id: int | None = None
        self.stop_event: threading.Event | None = None
        self.reply: Reply | None = None
        self.theme = THEMES[self.settings.theme]

    # -- layout ---------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield Sidebar(id="sidebar")
            with Vertical(id="chat"):
                yield ChatView(id="messages")
                yield PromptInput(id="prompt")
        yield StatusBar(id="status")
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
        self.status.model = self.session.model_name
        self.status.state = "ready" if self.session.loaded else "loading model"
        self.refresh_sidebar()
        if not self.session.loaded:
            self.load_model()

    def on_unmount(self) -> None:
        if self.stop_event is not None:
            self.stop_event.set()  # the worker stores the partial reply and ends
        if self._owns_session:
            self.session.close()
        if self._owns_store:
            self.store.close()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MAIN_ACTIONS and isinstance(self.screen, ModalScreen):
            return False
        return True

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

    # -- the model ------------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="model")
    def load_model(self) -> None:
        try:
            self.session.load()
        except AssistantError as exc:
            self.post_message(self.ModelLoaded(str(exc)))
        except Exception as exc:  # a backend failing in an unforeseen way must not take the UI down
            self.post_message(self.ModelLoaded(f"The model could not be loaded ({type(exc).__name__}: {exc})."))
        else:
            self.post_message(self.ModelLoaded(None))

    def on_assistant_app_model_loaded(self, message: ModelLoaded) -> None:
        self.status.model = self.session.model_name
        if message.error:
            self.status.state = "error"
            self.fail(message.error)
        elif not self.generating:
            self.status.state = "ready"

    # -- a chat turn ----------------------------------------------------------------------------------------

    @on(PromptInput.Submitted)
    async def send(self, event: PromptInput.Submitted) -> None:
        if self.generating:
            self.notify("A reply is still being written; wait for it or press Esc to stop it.", severity="warning")
            return
        try:
            text = validate_message(event.text)
        except InputError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        self.prompt.clear()
        await self.chat.add_user(text)
        self.stop_event = threading.Event()
        self.status.state = "generating" if self.session.loaded else "loading model"
        self.generate(text, self.conversation_id, self.stop_event)

    @work(thread=True, exclusive=True, group="generate")
    def generate(self, text: str, conversation_id: int | None, stop: threading.Event) -> None:
        # start_turn stores the user's message before anything else can fail, so an error loses nothing.
        try:
            turn = self.session.start_turn(text, conversation_id)
        except AssistantError as exc:
            self.post_message(self.TurnEnded(None, str(exc)))
            return
        except Exception as exc:
            self.post_message(self.TurnEnded(None, f"The reply could not start ({type(exc).__name__}: {exc})."))
            return
        self.post_message(self.TurnStarted(turn))
        error = None
        try:
            for chunk in turn.stream(stop):
                if chunk.text:
                    self.post_message(self.ReplyChunk(chunk.text))
        except AssistantError as exc:
            error = str(exc)
        except Exception as exc:
            error = f"The reply failed ({type(exc).__name__}: {exc}); the partial reply was kept."
        self.post_message(self.TurnEnded(turn, error))

    async def on_assistant_app_turn_started(self, message: TurnStarted) -> None:
        turn = message.turn
        self.status.state = "generating"
        self.status.model = self.session.model_name
        if turn.notice:
            self.notify(turn.notice, severity="warning", markup=False, timeout=8)
        if self.conversation_id != turn.conversation_id:
            self.conversation_id = turn.conversation_id
        self.refresh_sidebar()
        self.reply = await self.chat.add_reply(turn.backend.name)

    async def on_assistant_app_reply_chunk(self, message: ReplyChunk) -> None:
        if self.reply is not None:
            await self.reply.write(message.text)

    async def on_assistant_app_turn_ended(self, message: TurnEnded) -> None:
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
            if turn is None and self.conversation_id is None:
                self._adopt_newest_conversation()
        self.refresh_sidebar()

    def _adopt_newest_conversation(self) -> None:
        """A first message whose turn failed still made a conversation: keep showing it as the current one."""
        try:
            newest = self.store.list_conversations(limit=1)
        except AssistantError:
            return
        if newest and newest[0].message_count:
            self.conversation_id = newest[0].id

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
        self.sidebar.mark(conversation_id)
        self.prompt.focus()

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

        self.push_screen(RenameScreen(title), done)

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

        self.push_screen(ConfirmScreen(f"Delete the conversation “{title}” and all its messages?"), done)

    def action_search(self) -> None:
        from tui.screens.search import SearchScreen

        async def done(conversation_id: int | None) -> None:
            if conversation_id is not None:
                await self.open_conversation(conversation_id)

        self.push_screen(SearchScreen(self.store), done)

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

        self.push_screen(BetterAnswerScreen(reply.content, reply.better_answer), done)

    def action_copy_reply(self) -> None:
        reply = self._target()
        if reply is None:
            return
        self.copy_to_clipboard(reply.content)
        self.notify("Reply copied to the clipboard.")

    # -- model, theme, help, palette ------------------------------------------------------------------------

    def action_switch_model(self) -> None:
        if self.generating:
            self.notify("Stop the reply first (Esc), then switch models.", severity="warning")
            return
        from assistant.models import list_models
        from tui.screens.model_switcher import ModelSwitcherScreen

        def done(name: str | None) -> None:
            if name and name != self.session.model_name:
                self.status.state = "loading model"
                self.switch_model(name)

        self.push_screen(ModelSwitcherScreen(list_models(self.store), self.session.model_name), done)

    @work(thread=True, exclusive=True, group="model")
    def switch_model(self, name: str) -> None:
        # Resolving a bundled model may assemble its file (seconds), so even the switch runs off the UI thread.
        try:
            self.session.switch_model(name)
            save_setting("model", name, home=self.session.home)
            self.session.load()
        except AssistantError as exc:
            self.post_message(self.ModelLoaded(str(exc)))
        except Exception as exc:
            self.post_message(self.ModelLoaded(f"Could not switch to {name} ({type(exc).__name__}: {exc})."))
        else:
            self.post_message(self.ModelLoaded(None))

    def action_toggle_theme(self) -> None:
        name = "light" if self.theme == THEMES["dark"] else "dark"
        self.theme = THEMES[name]
        try:
            save_setting("theme", name, home=self.session.home)
        except AssistantError as exc:
            self.fail(str(exc))

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand("New chat", "Start a new conversation (Ctrl+N)", self.action_new_chat)
        yield SystemCommand("Switch model", "Choose the model to chat with (Ctrl+O)", self.action_switch_model)
        yield SystemCommand("Toggle theme", "Switch between dark and light (Ctrl+T)", self.action_toggle_theme)
        yield SystemCommand("Search", "Search every message (Ctrl+F)", self.action_search)
        yield SystemCommand("Rename chat", "Rename this conversation (F2)", self.action_rename_chat)
        yield SystemCommand("Delete chat", "Delete this conversation (F8)", self.action_delete_chat)
        yield SystemCommand("Help", "List the keys (F1)", self.action_help)
        yield from super().get_system_commands(screen)


def run() -> None:
    """Open the TUI on the user's data dir."""
    try:
        app = AssistantApp()
    except AssistantError as exc:
        # The UI cannot open without its settings and database: say why in one sentence, like the CLI does.
        import sys

        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    app.run()
