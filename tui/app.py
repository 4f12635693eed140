"""The assistant's terminal UI: the app holds the session, loads the model off the UI thread, and owns the
theme, the help, the model switcher and the command palette; the chat itself is ``tui.screens.chat.ChatScreen``.

The first frame never waits for the model: it loads in a thread worker that reports back with a Message.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen, Screen

from assistant.config import Settings, load_settings, save_setting
from assistant.errors import AssistantError
from assistant.session import Session
from storage.db import Store, open_store
from tui.screens.chat import ChatScreen

THEMES = {"dark": "textual-dark", "light": "textual-light"}

# App actions that make no sense while a dialog is open.
MAIN_ACTIONS = frozenset({"switch_model", "toggle_theme"})


class AssistantApp(App[None]):
    """A private local chat assistant."""

    TITLE = "assistant"
    CSS_PATH = "app.tcss"

    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("ctrl+o", "switch_model", "Model"),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
    ]

    class ModelLoaded(Message):
        def __init__(self, error: str | None) -> None:
            super().__init__()
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
        self._main: ChatScreen | None = None
        self.theme = THEMES[self.settings.theme]

    def get_default_screen(self) -> Screen:
        # Made here, inside the running app, not in __init__ (which may run before the app's event loop).
        self._main = ChatScreen(self.session)
        return self._main

    @property
    def main(self) -> ChatScreen:
        """The chat screen (the default screen)."""
        assert self._main is not None, "the app is not running"
        return self._main

    def on_mount(self) -> None:
        if not self.session.loaded:
            self.load_model()

    def on_unmount(self) -> None:
        if self._main is not None:
            self._main.shutdown()
        if self._owns_session:
            self.session.close()
        if self._owns_store:
            self.store.close()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in MAIN_ACTIONS and isinstance(self.screen, ModalScreen))

    def fail(self, error: str) -> None:
        self.notify(error, severity="error", markup=False, timeout=8)

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
        status = self.main.status
        status.model = self.session.model_name
        if message.error:
            status.state = "error"
            self.fail(message.error)
        elif not self.main.generating:
            status.state = "ready"

    def action_switch_model(self) -> None:
        if self.main.generating:
            self.notify("Stop the reply first (Esc), then switch models.", severity="warning")
            return
        from assistant.models import list_models
        from tui.screens.model_switcher import ModelSwitcherScreen

        def done(name: str | None) -> None:
            if name and name != self.session.model_name:
                self.main.status.state = "loading model"
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
        yield SystemCommand("New chat", "Start a new conversation (Ctrl+N)", self.main.action_new_chat)
        yield SystemCommand("Switch model", "Choose the model to chat with (Ctrl+O)", self.action_switch_model)
        yield SystemCommand("Toggle theme", "Switch between dark and light (Ctrl+T)", self.action_toggle_theme)
        yield SystemCommand("Search", "Search every message (Ctrl+F)", self.main.action_search)
        yield SystemCommand("Rename chat", "Rename this conversation (F2)", self.main.action_rename_chat)
        yield SystemCommand("Delete chat", "Delete this conversation (F8)", self.main.action_delete_chat)
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
