"""The Textual UI driven through Pilot: real app, real SQLite store, and the real bundled model where a user would be."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual import events
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widgets import Button, Input, Markdown, OptionList, TextArea

from assistant.config import Settings, load_settings
from assistant.errors import StorageError
from assistant.models import resolve
from assistant.session import Session
from storage.db import Store
from tests.fakes import FakeBackend
from tui.app import AssistantApp
from tui.screens.better_answer import BetterAnswerScreen
from tui.screens.chat_feedback import BETTER_ANSWER_SAVED
from tui.screens.confirm import ConfirmScreen
from tui.screens.edit_message import EditMessageScreen
from tui.screens.help import HelpScreen
from tui.screens.model_switcher import ModelSwitcherScreen
from tui.widgets.message import Reply, UserMessage
from tui.widgets.notes import NO_REPLY, TRIMMED_MESSAGE, FailedTurn, TurnNotice

SIZE = (110, 34)


class Notes(list[tuple[str, str]]):
    """Notifications the app raised, as (message, severity)."""

    def texts(self, severity: str | None = None) -> list[str]:
        return [m for m, s in self if severity is None or s == severity]


def record_notifications(app: AssistantApp) -> Notes:
    notes = Notes()
    original = app.notify

    def notify(message: str, **kwargs: object) -> None:
        notes.append((message, str(kwargs.get("severity", "information"))))
        original(message, **kwargs)  # type: ignore[arg-type]

    app.notify = notify  # type: ignore[method-assign]
    return notes


async def settle(pilot: Pilot, app: AssistantApp, rounds: int = 12000) -> None:
    """Let the workers finish (a condition; the bound only stops a broken test, far beyond a busy machine's need)."""
    for _ in range(rounds):
        await pilot.pause(0.05)
        if not app.main.generating and not any(w.is_running for w in app.workers):
            await pilot.pause()
            return
    raise AssertionError("the app did not become idle")


async def send(pilot: Pilot, app: AssistantApp, text: str, *, type_it: bool = False) -> None:
    """Put the text in the prompt (typed key by key, or inserted like a paste, which is quicker) and press Enter."""
    if type_it:
        await pilot.press(*text)
    else:
        app.main.prompt.insert(text)
    await pilot.press("enter")


def seed(store: Store) -> list[int]:
    """Two conversations written straight to the store (no model needed)."""
    first = store.create_conversation("Paris trip")
    store.add_message(first, "user", "What should I see in Paris?")
    store.add_message(first, "assistant", "The **Louvre** and the Eiffel Tower.", model="smollm2", tokens_per_s=95.0)
    second = store.create_conversation("Sourdough bread")
    store.add_message(second, "user", "How long do I proof sourdough?")
    store.add_message(second, "assistant", "About 4 hours at room temperature.", model="smollm2")
    return [first, second]


# -- the real model ---------------------------------------------------------------------------------------------


@pytest.mark.model
async def test_send_streams_and_stores_a_real_reply(real_session: Session, store: Store) -> None:
    app = AssistantApp(session=real_session)
    async with app.run_test(size=SIZE) as pilot:
        assert app.focused is app.main.prompt
        await send(pilot, app, "What is the capital of France?", type_it=True)
        assert app.main.prompt.text == ""
        await settle(pilot, app)

        messages = store.messages(app.main.conversation_id)  # type: ignore[arg-type]
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[0].content == "What is the capital of France?"
        reply = messages[1]
        assert reply.complete and reply.finish_reason in ("stop", "length") and reply.content.strip()
        shown = app.main.chat.query(Reply).last()
        assert shown.content == reply.content and shown.message_id == reply.id and shown.marker is None
        assert app.main.status.state == "ready"
        assert app.main.status.tokens_per_s == reply.tokens_per_s and reply.tokens_per_s
        # the new conversation is listed in the sidebar, titled from the message
        options = app.main.sidebar.options
        assert options.option_count == 1 and options.highlighted == 0
        assert app.focused is app.main.prompt


@pytest.mark.model
async def test_escape_stops_and_keeps_the_partial_reply(real_session: Session, store: Store) -> None:
    real_session.settings.max_tokens = 400
    app = AssistantApp(session=real_session)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Write a long story about a dragon who learns to bake bread.")
        for _ in range(30000):  # wait until some of the reply is on screen
            await pilot.pause(0.02)
            if app.main.reply is not None and len(app.main.reply.content) > 20:
                break
        else:
            raise AssertionError("no reply appeared")
        assert app.main.generating
        await pilot.press("escape")
        await settle(pilot, app)

        reply = store.messages(app.main.conversation_id)[-1]  # type: ignore[arg-type]
        assert reply.role == "assistant" and not reply.complete and reply.finish_reason == "cancelled"
        assert reply.content.strip() and reply.completion_tokens < 400
        shown = app.main.chat.query(Reply).last()
        assert shown.content == reply.content and shown.marker == "stopped"
        assert "stopped" in str(shown.meta_text())
        assert app.main.status.state == "stopped"
        # the stopped reply still shows as stopped when the conversation is opened again
        await app.main.open_conversation(app.main.conversation_id)
        await pilot.pause()
        assert app.main.chat.query(Reply).last().marker == "stopped"


@pytest.mark.model
async def test_rate_better_answer_and_copy_a_real_reply(real_session: Session, store: Store) -> None:
    app = AssistantApp(session=real_session)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Say hello.")
        await settle(pilot, app)
        reply_id = store.messages(app.main.conversation_id)[-1].id  # type: ignore[arg-type]

        await pilot.press("f3")
        assert store.get_message(reply_id).rating == 1
        await pilot.press("f4")
        assert store.get_message(reply_id).rating == -1
        assert "rated bad" in str(app.main.chat.query(Reply).last().meta_text())
        await pilot.press("f4")  # the same key again clears it
        assert store.get_message(reply_id).rating is None

        await pilot.press("f5")
        assert isinstance(app.screen, BetterAnswerScreen)
        app.screen.query_one("#better").load_text("")  # type: ignore[attr-defined]
        await pilot.press(*"Hello! How can I help?")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, BetterAnswerScreen)
        assert store.get_message(reply_id).better_answer == "Hello! How can I help?"
        assert "better answer saved" in str(app.main.chat.query(Reply).last().meta_text())
        # The toast promises only what is true today: no learning job ships yet.
        assert notes.texts()[-1] == BETTER_ANSWER_SAVED and "learning" not in BETTER_ANSWER_SAVED

        await pilot.press("f9")
        assert app.clipboard == store.get_message(reply_id).content
        assert app.focused is app.main.prompt


async def test_bad_input_is_refused_or_kept(fake_session: Session, store: Store) -> None:
    # The fake model keeps this quick: prompt processing of a full context on the real one takes tens of seconds
    # on a busy 2-core machine, and the trimming under test is the planner's, not the model's.
    app = AssistantApp(session=fake_session)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "   ")
        await pilot.pause()
        assert any("empty" in n for n in notes.texts("warning"))
        assert store.list_conversations() == [] and not app.main.generating

        huge = ("All work and no play makes Jack a dull boy. " * 5000)[:200_000]
        app.main.prompt.clear()
        app.post_message(events.Paste(huge))  # what the terminal driver sends for a paste
        await pilot.pause()
        assert len(app.main.prompt.text) == 200_000
        await pilot.press("enter")
        await settle(pilot, app)

        messages = store.messages(app.main.conversation_id)  # type: ignore[arg-type]
        assert messages[0].role == "user" and messages[0].content == huge
        assert any("context" in n for n in notes.texts("warning")), notes
        assert messages[1].role == "assistant" and messages[1].content.strip()
        assert app.is_running and app.main.status.state == "ready"
        assert "stored in full" in str(app.main.chat.query(UserMessage).last().query_one(".body").render())
        # The notice stays in the transcript, under the reply, after the toast has gone; and when reopened.
        (notice,) = app.main.chat.query(Reply).last().query(TurnNotice)
        assert "longer than the model's" in notice.text and notice.text in notes.texts("warning")
        await app.main.open_conversation(app.main.conversation_id)
        await pilot.pause()
        assert [n.text for n in app.main.chat.query(UserMessage).last().query(TurnNotice)] == [TRIMMED_MESSAGE]


async def test_a_reply_markdown_would_render_blank_is_shown_as_text(
    fake_session: Session, fake_backend: FakeBackend, store: Store
) -> None:
    # What the real SmolLM2 wrote for a 185,000-character paste of Python source (temperature 0): empty headings.
    fake_backend.replies = ["", "#\n#\n#\n#\n#\n#"]
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "say nothing")
        await settle(pilot, app)
        assert "empty: the model wrote nothing" in str(app.main.chat.query(Reply).last().meta_text())
        await pilot.press("ctrl+n")
        await send(pilot, app, "import os\n" * 100)
        await settle(pilot, app)
        reply = app.main.chat.query(Reply).last()
        assert not reply.query(Markdown) and "#\n#" in str(reply.query_one(".body").render())
        await app.main.open_conversation(app.main.conversation_id)  # the same from the database
        await pilot.pause()
        first = app.main.chat.query(Reply).first()
        assert not first.query(Markdown) and "#\n#" in str(first.query_one(".body").render())


# -- conversations in the sidebar -----------------------------------------------------------------------------


@pytest.mark.model
async def test_sidebar_switch_new_filter_rename_delete(real_session: Session, store: Store) -> None:
    paris, bread = seed(store)
    app = AssistantApp(session=real_session)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        options = app.main.sidebar.options
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == [str(bread), str(paris)]

        await pilot.click("#conversations", offset=(2, 1))  # the second line: Paris
        await pilot.pause()
        assert app.main.conversation_id == paris
        assert [w.content for w in app.main.chat.query(UserMessage)] == ["What should I see in Paris?"]
        assert "Louvre" in app.main.chat.query(Reply).last().content

        # a new message goes to the open conversation, with the real model
        await send(pilot, app, "And in Lyon?")
        await settle(pilot, app)
        assert [m.content for m in store.messages(paris)][2] == "And in Lyon?"

        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.main.conversation_id is None and not app.main.chat.query(Reply)
        await pilot.click("#new-chat")
        assert app.main.conversation_id is None

        await pilot.press("ctrl+l")
        assert isinstance(app.focused, Input)
        await pilot.press(*"sour")
        await pilot.pause()
        assert options.option_count == 1 and options.get_option_at_index(0).id == str(bread)
        options.focus()
        options.highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        assert app.main.conversation_id == bread

        await pilot.press("f2")
        await pilot.press("ctrl+u", *"Baking", "enter")
        await pilot.pause()
        assert store.get_conversation(bread).title == "Baking"

        await pilot.press("f8")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # cancelling keeps it
        await pilot.pause()
        assert store.get_conversation(bread).title == "Baking"
        await pilot.press("f8")
        await pilot.press("y")
        await pilot.pause()
        assert [c.id for c in store.list_conversations()] == [paris]
        assert app.main.conversation_id is None and "Conversation deleted." in notes.texts()


async def test_search_opens_the_conversation_of_a_hit(fake_session: Session, store: Store) -> None:
    paris, _ = seed(store)
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+f")
        await pilot.press(*"louvre")
        await pilot.pause()
        hits = app.screen.query_one("#hits", OptionList)
        assert hits.option_count == 1
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.main.conversation_id == paris and "Louvre" in app.main.chat.query(Reply).last().content


async def test_incomplete_replies_from_the_database_are_marked(fake_session: Session, store: Store) -> None:
    cid = store.create_conversation("Broken")
    store.add_message(cid, "user", "one")
    store.add_message(cid, "assistant", "half a", complete=0, finish_reason="cancelled")
    store.add_message(cid, "user", "two")
    store.add_message(cid, "assistant", "cut", complete=0)  # a crash left no finish reason
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await app.main.open_conversation(cid)
        await pilot.pause()
        assert [r.marker for r in app.main.chat.query(Reply)] == ["stopped", "interrupted"]


# -- model, theme, help, palette, errors ------------------------------------------------------------------------


async def test_model_switcher_switches_and_saves(fake_session: Session, store: Store, home: Path) -> None:
    smollm2 = resolve(store, "smollm2", home / "models").path
    store.add_model("mini", str(smollm2), "local")
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, ModelSwitcherScreen)
        await pilot.press("down", "down", "enter")  # smollm2 (current) -> gemma3-270m -> mini
        await settle(pilot, app)
        assert fake_session.model_name == "mini" and fake_session.loaded
        assert load_settings(home).model == "mini"
        assert app.main.status.model == "mini" and app.main.status.state == "ready"


async def test_theme_toggle_from_the_command_palette_is_saved(fake_session: Session, home: Path) -> None:
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "textual-dark"
        await pilot.press("ctrl+p")
        await pilot.press(*"toggle theme")
        for _ in range(30000):  # the palette searches in the background
            await pilot.pause(0.02)
            found = app.screen.query_one(CommandList)
            if found.option_count and "Toggle theme" in str(found.get_option_at_index(0).prompt):
                break
        else:
            raise AssertionError("the palette never offered the command")
        await pilot.press("enter")
        await pilot.pause()
        assert app.theme == "textual-light"
        assert load_settings(home).theme == "light"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-dark" and load_settings(home).theme == "dark"


async def test_help_lists_the_keys(fake_session: Session) -> None:
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen) and app.focused is app.main.prompt


async def test_newline_key_does_not_send(fake_session: Session, store: Store) -> None:
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a", "ctrl+j", "b")
        assert app.main.prompt.text == "a\nb" and store.list_conversations() == []
        await pilot.press("enter")
        await settle(pilot, app)
        assert store.messages(app.main.conversation_id)[0].content == "a\nb"  # type: ignore[arg-type]


async def test_first_frame_does_not_wait_for_the_model(store: Store, settings: Settings, home: Path) -> None:
    release = threading.Event()

    def slow_loader(spec: object, s: Settings) -> FakeBackend:
        release.wait(30)
        return FakeBackend(["Ready now."])

    session = Session(store, settings, home=home, loader=slow_loader)
    app = AssistantApp(session=session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.main.status.state == "loading model" and app.focused is app.main.prompt
        await send(pilot, app, "hi")  # typing works while the model loads
        assert store.messages(store.list_conversations()[0].id)[0].content == "hi"
        release.set()
        await settle(pilot, app)
        assert app.main.chat.query(Reply).last().content == "Ready now."
        assert app.main.status.state == "ready"


async def test_a_broken_model_points_to_ctrl_o_shows_the_failure_and_retries(
    store: Store, settings: Settings, home: Path
) -> None:
    # A registered model whose file is corrupt, active: the real loader, the real switch, the real bundled model.
    broken = home / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    store.add_model("broken", str(broken), "local")
    settings.model = "broken"
    session = Session(store, settings, home=home, use_memory=False)
    app = AssistantApp(session=session)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert app.main.status.state == "error"
        (toast,) = notes.texts("error")
        assert "Ctrl+O" in toast and "`assistant " not in toast, toast

        await send(pilot, app, "Is my message kept?")
        await settle(pilot, app)
        cid = app.main.conversation_id
        assert cid is not None and [m.content for m in store.messages(cid)] == ["Is my message kept?"]
        (failure,) = app.main.chat.query(FailedTurn)
        assert "Ctrl+O" in failure.error and "`assistant " not in failure.error
        # Once the toast is gone the transcript still says so: reopened from the database.
        await app.main.open_conversation(None)
        await app.main.open_conversation(cid)
        await pilot.pause()
        assert [f.error for f in app.main.chat.query(FailedTurn)] == [NO_REPLY]

        await pilot.press("ctrl+o")
        switcher = app.screen
        assert isinstance(switcher, ModelSwitcherScreen)
        models = switcher.query_one("#models", OptionList)
        highlighted = models.get_option_at_index(models.highlighted)  # type: ignore[arg-type]
        assert highlighted.id != "broken"
        assert "could not be loaded" in str(models.get_option("broken").prompt)
        models.highlighted = models.get_option_index("smollm2")
        await pilot.press("enter")
        await settle(pilot, app)
        assert session.model_name == "smollm2" and session.loaded and app.main.status.state == "ready"

        await pilot.click(app.main.chat.query_one(FailedTurn).query_one(Button))  # Retry (F6 does the same)
        await settle(pilot, app)
        messages = store.messages(cid)
        assert [m.role for m in messages] == ["user", "assistant"] and messages[1].complete
        assert not app.main.chat.query(FailedTurn) and app.main.chat.query(Reply).last().message_id == messages[1].id


async def test_a_backend_failing_mid_reply_keeps_the_partial_reply(
    fake_session: Session, fake_backend: FakeBackend, store: Store
) -> None:
    fake_backend.replies = ["one two three four five"]
    fake_backend.fail_after = 2
    app = AssistantApp(session=fake_session)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "go")
        await settle(pilot, app)
        reply = store.messages(app.main.conversation_id)[-1]  # type: ignore[arg-type]
        assert reply.content == "one two" and reply.finish_reason == "error" and not reply.complete
        assert app.main.chat.query(Reply).last().marker == "error"
        assert notes.texts("error") and app.main.status.state == "error"
        # The error stays under the reply (also when reopened), and F6 retries: a new reply replaces it.
        (failure,) = app.main.chat.query(Reply).last().query(FailedTurn)
        assert failure.error == notes.texts("error")[0]
        await app.main.open_conversation(app.main.conversation_id)
        await pilot.pause()
        assert [f.error for f in app.main.chat.query(FailedTurn)] == [reply.error]
        fake_backend.fail_after = None
        await pilot.press("f6")
        await settle(pilot, app)
        messages = store.messages(app.main.conversation_id)  # type: ignore[arg-type]
        assert [m.role for m in messages] == ["user", "assistant"] and messages[1].complete
        assert store.get_message(reply.id).superseded_by == messages[1].id
        assert not app.main.chat.query(FailedTurn) and len(app.main.chat.replies) == 1


async def test_text_goes_back_to_the_prompt_when_the_store_fails(
    fake_session: Session, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(*args: object, **kwargs: object) -> int:
        raise StorageError("The database is locked by another program; close it and try again.")

    app = AssistantApp(session=fake_session)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        monkeypatch.setattr(store, "create_conversation", locked)
        await send(pilot, app, "keep me")
        await settle(pilot, app)
        assert notes.texts("error") == ["The database is locked by another program; close it and try again."]
        assert app.main.prompt.text == "keep me" and not app.main.chat.query(UserMessage)
        monkeypatch.undo()
        await pilot.press("enter")  # once the store works again, the same text goes through
        await settle(pilot, app)
        assert store.messages(app.main.conversation_id)[0].content == "keep me"  # type: ignore[arg-type]


async def test_clicking_a_reply_picks_it_for_feedback(fake_session: Session, store: Store) -> None:
    cid = store.create_conversation("Two replies")
    store.add_message(cid, "user", "one")
    first = store.add_message(cid, "assistant", "first reply")
    store.add_message(cid, "user", "two")
    last = store.add_message(cid, "assistant", "second reply")
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await app.main.open_conversation(cid)
        await pilot.pause()
        await pilot.press("f3")  # no pick: the last reply
        assert store.get_message(last).rating == 1 and store.get_message(first).rating is None
        await pilot.click(app.main.chat.query(Reply).first())
        await pilot.press("f4")
        assert store.get_message(first).rating == -1 and store.get_message(last).rating == 1
        assert app.main.focused is app.main.prompt


async def test_quitting_mid_reply_keeps_the_partial_reply(
    fake_session: Session, fake_backend: FakeBackend, store: Store
) -> None:
    fake_backend.replies = [" ".join(["word"] * 400)]
    fake_backend.hold = threading.Event()  # after its first words, the model waits for the test
    fake_backend.hold_after = 8  # more than the checker's stream guard holds back
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "talk for a while")
        for _ in range(30000):
            await pilot.pause(0.02)
            if app.main.reply is not None and app.main.reply.content:
                break
        else:
            raise AssertionError("no reply appeared")
        # The model goes on only once the quit has asked the reply to stop: it cannot end first.
        stop, hold = app.main.stop_event, fake_backend.hold
        assert stop is not None
        threading.Thread(target=lambda: (stop.wait(), hold.set()), daemon=True).start()
        await pilot.press("ctrl+q")
    reply = store.messages(store.list_conversations()[0].id)[-1]
    assert reply.role == "assistant" and reply.finish_reason == "cancelled" and not reply.complete
    assert reply.content.startswith("word word") and len(reply.content.split()) < 400


async def test_the_app_opens_its_own_store_and_model_after_the_first_frame(store: Store) -> None:
    cid = store.create_conversation(title="Earlier chat")
    store.add_message(cid, "user", "from before")
    app = AssistantApp()  # as `assistant` runs it: nothing opened before the first frame
    async with app.run_test(size=SIZE) as pilot:
        assert app.session is None or app.main.status.state in ("starting", "loading model", "ready")
        for _ in range(12000):  # a condition; the bound only stops a broken test
            await pilot.pause(0.05)
            if app.session is not None and app.session.loaded and app.main.status.state == "ready":
                break
        assert app.session is not None and app.session.loaded
        assert app.main.status.model == "smollm2"
        options = app.main.sidebar.options
        assert [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)] == ["Earlier chat"]


async def test_an_unusable_data_dir_is_a_notification_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("ASSISTANT_HOME", str(blocker / "home"))
    app = AssistantApp()
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(12000):
            await pilot.pause(0.05)
            if notes.texts("error"):
                break
        else:
            raise AssertionError("no error notification")
        assert app.is_running and app.main.status.state == "error"
        (text,) = notes.texts("error")
        assert "Cannot use the data directory" in text
        await pilot.press("ctrl+n")  # actions that need the session stay disabled instead of crashing
        assert app.is_running


# -- keys from a real terminal, notices, failures, regenerate / edit / retry -------------------------------------


async def type_raw(pilot: Pilot, app: AssistantApp, data: str) -> None:
    """Feed bytes as the terminal sends them through the parser the app's driver uses, then deliver the keys in one
    burst (as a fast typist or tmux does), without waiting between them."""
    from textual._xterm_parser import XTermParser
    from textual.drivers import linux_driver

    from tui.keys import keys_of

    parser = linux_driver.XTermParser()
    assert isinstance(parser, XTermParser)
    for key in keys_of(parser, data):
        app.post_message(key)
    await pilot.pause()


async def test_alt_enter_from_tmux_adds_a_line_and_keeps_what_follows(fake_session: Session, store: Store) -> None:
    # tmux (like most terminals without the kitty protocol) sends Alt+Enter as ESC CR.
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await type_raw(pilot, app, "first line\x1b\rsecond line")
        assert app.main.prompt.text == "first line\nsecond line"
        assert store.list_conversations() == [] and not app.main.generating
        await type_raw(pilot, app, "\x1b\r\x1b\rend")  # two at once must not turn into "^" and a send
        assert app.main.prompt.text == "first line\nsecond line\n\nend"
        assert store.list_conversations() == []


async def test_text_typed_right_after_enter_stays_in_the_box(fake_session: Session, store: Store) -> None:
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await type_raw(pilot, app, "send this\rtyped after")  # one burst: Enter, then more keys before it is handled
        await settle(pilot, app)
        assert [m.content for m in store.messages(app.main.conversation_id)][:1] == ["send this"]  # type: ignore[arg-type]
        assert app.main.prompt.text == "typed after"


@pytest.mark.model
async def test_regenerate_and_edit_and_resend_a_real_reply(real_session: Session, store: Store) -> None:
    app = AssistantApp(session=real_session)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Name a fruit.")
        await settle(pilot, app)
        cid = app.main.conversation_id
        assert cid is not None
        first = store.messages(cid)[-1]

        await pilot.press("f6")  # regenerate: a new reply to the same message
        await settle(pilot, app)
        messages = store.messages(cid)
        assert [m.role for m in messages] == ["user", "assistant"] and messages[1].id != first.id
        assert messages[1].complete and store.get_message(first.id).superseded_by == messages[1].id
        assert [r.message_id for r in app.main.chat.replies] == [messages[1].id]

        await pilot.press("f7")  # edit and resend
        assert isinstance(app.screen, EditMessageScreen)
        edited = app.screen.query_one("#edited", TextArea)
        assert edited.text == "Name a fruit."
        edited.load_text("Name a vegetable.")
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        after = store.messages(cid)
        assert [m.content for m in after][:1] == ["Name a vegetable."] and after[1].complete and len(after) == 2
        assert store.get_message(messages[0].id).superseded_by is not None
        assert [w.content for w in app.main.chat.query(UserMessage)] == ["Name a vegetable."]
        assert [r.message_id for r in app.main.chat.replies] == [after[1].id]
        assert app.focused is app.main.prompt


async def test_a_theme_picked_in_the_palette_is_saved_and_restored(fake_session: Session, home: Path) -> None:
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"theme")
        for _ in range(30000):  # the palette searches in the background
            await pilot.pause(0.02)
            found = app.screen.query_one(CommandList)
            if found.option_count and "Theme" in str(found.get_option_at_index(0).prompt):
                break
        else:
            raise AssertionError("the palette never offered the command")
        await pilot.press("enter")  # Textual's own "Theme" command: a list of every theme
        await pilot.press(*"dracula")
        for _ in range(30000):
            await pilot.pause(0.02)
            found = app.screen.query_one(CommandList)
            if found.option_count and "dracula" in str(found.get_option_at_index(0).prompt):
                break
        else:
            raise AssertionError("the palette never offered the theme")
        await pilot.press("enter")
        for _ in range(100):
            await pilot.pause()
            if load_settings(home).theme == "dracula":
                break
        assert app.theme == "dracula" and load_settings(home).theme == "dracula"
    # The next start opens with it: the first frame (read without the settings machinery) and after start-up.
    again = AssistantApp()
    async with again.run_test(size=SIZE) as pilot:
        assert again.theme == "dracula"
        for _ in range(12000):
            await pilot.pause(0.05)
            if again.session is not None:
                break
        else:
            raise AssertionError("the session never opened")
        await pilot.pause()
        assert again.theme == "dracula"
