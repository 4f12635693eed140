"""The assistant's terminal UI: the app holds the session, loads the model off the UI thread, and owns the
theme, the help, the model switcher and the command palette; the chat itself is ``tui.screens.chat.ChatScreen``.

The first frame waits for nothing but Textual: settings, the database and the session are opened in a thread
worker after the first paint (importing sqlite-utils and pydantic costs ~0.4 s here), then the model loads in
another worker. Both report back with Messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.driver import Driver
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.theme import Theme

from assistant.errors import AssistantError
from tui.background_learn import BackgroundLearn, LearnUpdate
from tui.screens.chat import ChatScreen
from tui.widgets.notes import for_tui

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.session import Session
    from storage.db import Store

# The settings' two original names; any other Textual theme (the palette's "Change theme") is saved by its own name.
THEMES = {"dark": "textual-dark", "light": "textual-light"}
SETTING_OF_THEME = {theme: name for name, theme in THEMES.items()}

# App actions that make no sense while a dialog is open.
MAIN_ACTIONS = frozenset({"switch_model", "toggle_theme", "learning"})


class AssistantApp(App[None]):
    """A private local chat assistant."""

    TITLE = "assistant"
    CSS_PATH = "app.tcss"

    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("ctrl+o", "switch_model", "Model"),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
        Binding("f10", "learning", "Learning", show=False),
    ]

    class Started(Message):
        """The settings, database and session are open (or ``error`` says why not)."""

        def __init__(self, session: Session | None, error: str | None) -> None:
            super().__init__()
            self.session = session
            self.error = error

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
        self.settings = settings
        self.store = store
        self.session = session
        self._main: ChatScreen | None = None
        self.model_failed: str | None = None  # the model that could not be loaded (the switcher opens elsewhere)
        self.learner = BackgroundLearn(self)  # "learn now": outlives the Learning screen
        self.theme = self.theme_for(settings.theme if settings else peek_theme())
        self._saved_theme = self.theme

    def get_driver_class(self) -> type[Driver]:
        from tui import keys

        keys.install()  # Alt+Enter from terminals that send ESC + CR (tmux) must add a line, not send
        return super().get_driver_class()

    def theme_for(self, setting: object) -> str:
        """The Textual theme for a ``theme`` setting: dark, light, or a theme's own name (unknown: dark)."""
        name = THEMES.get(str(setting), str(setting))
        return name if name in self.available_themes else THEMES["dark"]

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
        # Whatever changes the theme (Ctrl+T, the palette's own theme picker) is saved.
        self.theme_changed_signal.subscribe(self, self.save_theme)
        if self.session is None:
            self.call_after_refresh(self.start_up)
        elif not self.session.loaded:
            self.load_model()

    def on_unmount(self) -> None:
        self.learner.stop()  # no training left running untended
        if self._main is not None:
            self._main.shutdown()
        if self._owns_session and self.session is not None:
            self.session.close()
        if self._owns_store and self.store is not None:
            self.store.close()

    @work(thread=True, exclusive=True, group="start")
    def start_up(self) -> None:
        """Open settings, database and session off the UI thread, after the first frame is on screen."""
        try:
            from assistant.app_store import open_store
            from assistant.config import load_settings
            from assistant.session import Session

            settings = load_settings()
            store = open_store()
            self.post_message(self.Started(Session(store, settings), None))
        except AssistantError as exc:
            self.post_message(self.Started(None, str(exc)))
        except Exception as exc:  # the UI stays up to say what went wrong
            self.post_message(self.Started(None, f"The assistant could not start ({type(exc).__name__}: {exc})."))

    def on_assistant_app_started(self, message: Started) -> None:
        if message.session is None:
            self.main.status.state = "error"
            self.fail(f"{message.error} The assistant cannot chat until this is fixed.")
            return
        self.session, self.store, self.settings = message.session, message.session.store, message.session.settings
        self.theme = self._saved_theme = self.theme_for(self.settings.theme)
        for warning in self.settings.warnings:
            self.notify(warning, severity="warning", markup=False, timeout=8)
        self.main.attach(self.session)
        self.load_model()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MAIN_ACTIONS and self.session is None:
            return False  # still starting up
        return not (action in MAIN_ACTIONS and isinstance(self.screen, ModalScreen))

    def fail(self, error: str) -> None:
        self.notify(error, severity="error", markup=False, timeout=8)

    # -- the model ------------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="model")
    def load_model(self) -> None:
        assert self.session is not None
        try:
            self.session.load()
        except AssistantError as exc:
            self.post_message(self.ModelLoaded(str(exc)))
        except Exception as exc:  # a backend failing in an unforeseen way must not take the UI down
            self.post_message(self.ModelLoaded(f"The model could not be loaded ({type(exc).__name__}: {exc})."))
        else:
            self.post_message(self.ModelLoaded(None))

    def on_assistant_app_model_loaded(self, message: ModelLoaded) -> None:
        assert self.session is not None
        status = self.main.status
        status.model = self.session.model_name
        if message.error:
            self.model_failed = self.session.model_name
            status.state = "error"
            self.fail(for_tui(message.error))
        else:
            self.model_failed = None
            status.adapter = self.session.adapter_version or "none"
            if not self.main.generating:
                status.state = "ready"

    def action_switch_model(self) -> None:
        session, store = self.session, self.store
        assert session is not None and store is not None
        if self.main.generating:
            self.notify("Stop the reply first (Esc), then switch models.", severity="warning")
            return
        from assistant.models import list_models
        from tui.screens.model_switcher import ModelSwitcherScreen

        def done(name: str | None) -> None:
            if name and name != session.model_name:
                self.main.status.state = "loading model"
                self.switch_model(name)

        self.push_screen(ModelSwitcherScreen(list_models(store), session.model_name, self.model_failed), done)

    @work(thread=True, exclusive=True, group="model")
    def switch_model(self, name: str) -> None:
        from assistant.config import save_setting

        assert self.session is not None
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
        """Ctrl+T: dark to light and back (from any other theme, to the opposite of its darkness)."""
        self.theme = THEMES["light"] if self.current_theme.dark else THEMES["dark"]

    def save_theme(self, theme: Theme) -> None:
        """Keep the theme the user chose, by whatever way, for the next start."""
        if self.session is None or theme.name == self._saved_theme:
            return
        from assistant.config import save_setting

        try:
            save_setting("theme", SETTING_OF_THEME.get(theme.name, theme.name), home=self.session.home)
        except AssistantError as exc:
            self.fail(f"{exc} The theme stays until the assistant closes.")
        else:
            self._saved_theme = theme.name

    def on_learn_update(self, message: LearnUpdate) -> None:
        self.learner.apply(message)

    def action_learning(self) -> None:
        from tui.screens.learning import LearningScreen

        if self.session is None:
            self.notify("Still starting up; open the learning screen in a moment.")
            return
        self.push_screen(LearningScreen(self.session, self.learner))

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand("New chat", "Start a new conversation (Ctrl+N)", self.main.action_new_chat)
        yield SystemCommand("Switch model", "Choose the model to chat with (Ctrl+O)", self.action_switch_model)
        yield SystemCommand("Toggle theme", "Switch between dark and light (Ctrl+T)", self.action_toggle_theme)
        yield SystemCommand("Search", "Search every message (Ctrl+F)", self.main.action_search)
        yield SystemCommand(
            "Regenerate or retry",
            "A new reply for the last message, or retry a failed one (F6)",
            self.main.action_regenerate,
        )
        yield SystemCommand(
            "Edit and resend", "Edit a message you sent and send it again (F7)", self.main.action_edit_message
        )
        yield SystemCommand("Rename chat", "Rename this conversation (F2)", self.main.action_rename_chat)
        yield SystemCommand("Delete chat", "Delete this conversation (F8)", self.main.action_delete_chat)
        yield SystemCommand(
            "Memory", "Facts and earlier messages the assistant remembers (Ctrl+R)", self.main.action_memory
        )
        yield SystemCommand(
            "Toggle memory", "Turn recall of earlier chats and facts on or off (Ctrl+G)", self.main.action_toggle_memory
        )
        yield SystemCommand(
            "Learning", "Learning runs, scores, adapters (activate, roll back) and learn now (F10)",
            self.action_learning,
        )  # fmt: skip
        yield SystemCommand("Help", "List the keys (F1)", self.action_help)
        yield from super().get_system_commands(screen)


def peek_theme() -> str:
    """The theme setting for the first frame, read without validating the settings (that happens right after)."""
    from assistant.config import peek_setting

    theme = peek_setting("theme")
    return theme if isinstance(theme, str) and theme else "dark"


def run() -> None:
    """Open the TUI on the user's data dir (errors in opening it become notifications inside the UI)."""
    AssistantApp().run()
