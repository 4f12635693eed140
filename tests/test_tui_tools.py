"""Tools in the Textual UI, through Pilot: `/tool` turns, completion, the side-effect modal, failures and history.

The real app, a real SQLite store, the real built-in tools and plugins installed for real (a package with an
``assistant.plugins`` entry point on sys.path); the real bundled model where a message goes to the model.
"""

from __future__ import annotations

import itertools
import json
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.session import Session
from storage.db import Store
from storage.facts import list_facts
from tests.test_plugins import dice_site  # noqa: F401  (a fixture: the example plugin, installed with pip)
from tests.test_tui import SIZE, record_notifications, send, settle
from tests.test_tui_learning import until
from tui.app import AssistantApp
from tui.screens.tool_confirm import ToolConfirmScreen
from tui.tool_completion import ToolEntry, complete
from tui.widgets.message import Reply
from tui.widgets.tool_result import ToolResultView

_numbers = itertools.count()

FAILING_PLUGIN = '''
from assistant.plugins import hookimpl, tool


@tool
def explode() -> str:
    """Always fails: a broken tool."""
    raise RuntimeError("the fuse was lit")


@tool
def shout(text: str, times: int = 1) -> str:
    """Say it louder.

    Args:
        text: What to shout.
        times: How many times.
    """
    return " ".join([text.upper()] * times)


@hookimpl
def register_tools(register, context):
    register(explode)
    register(shout)
'''


def install_plugin(site: Path, source: str, *, entry: str = "tui_test") -> str:
    """Install a one-module plugin package into ``site`` (on sys.path): its module name, unique per call, so
    each test imports it afresh."""
    module = f"tui_test_plugin_{next(_numbers)}"
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    dist = site / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[assistant.plugins]\n{entry} = {module}\n")
    return module


@pytest.fixture
def test_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A plugin with a failing tool (`explode`) and a two-parameter one (`shout`), installed on sys.path."""
    site = tmp_path / "site"
    module = install_plugin(site, FAILING_PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    return module




def stored_tools(store: Store, message_id: int) -> list[dict[str, object]]:
    found = store.get_message(message_id).tools
    return json.loads(found) if found else []


def tool_views(app: AssistantApp) -> list[ToolResultView]:
    return list(app.main.chat.query(ToolResultView))


# -- /tool turns --------------------------------------------------------------------------------------------------


async def test_tool_calculate_shows_the_result_stored_and_reopened(fake_session: Session, store: Store) -> None:
    # `/tool` never reaches the model: the session (real store, real tools) is all there is to it.
    app = AssistantApp(session=fake_session)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "/tool calculate 2+3*4")
        await settle(pilot, app)

        (view,) = tool_views(app)
        assert view.ok and view.result["tool"] == "calculate" and "14" in view.text
        meta = str(view.query_one(".tool-meta").render())
        assert "calculate" in meta and "ok" in meta and "2+3*4" in meta
        # The reply is the tool's own text: shown once, as the reply, under the tool's line.
        reply_widget = app.main.chat.query(Reply).last()
        assert reply_widget.content.strip() == view.text.strip() and reply_widget.content.strip().endswith("= 14")
        assert view.compact and not view.query(".tool-body")
        cid = app.main.conversation_id
        assert cid is not None
        user, reply = store.messages(cid)
        assert user.role == "user" and user.content == "/tool calculate 2+3*4"
        (result,) = stored_tools(store, reply.id)
        assert result["ok"] and result["tool"] == "calculate" and "14" in str(result["content"])
        assert app.main.status.state == "ready" and not notes.texts("error")

        # Reopened (another conversation, then this one): the result is read back from messages.tools.
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not tool_views(app)
        await app.main.open_conversation(cid)
        await pilot.pause()
        (again,) = tool_views(app)
        assert again.ok and "14" in again.text and again in app.main.chat.query(Reply).last().query(ToolResultView)

    # And in a new app on the same data, as after a restart.
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await app.main.open_conversation(cid)
        await pilot.pause()
        (restored,) = tool_views(app)
        assert restored.result["tool"] == "calculate" and "14" in restored.text


@pytest.mark.model
async def test_a_failing_tool_is_a_notification_and_the_chat_goes_on(
    test_plugin: str, real_session: Session, store: Store
) -> None:
    app = AssistantApp(session=real_session)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "/tool explode")
        await settle(pilot, app)

        (view,) = tool_views(app)
        assert not view.ok and view.has_class("-failed") and "fuse" in view.text
        errors = notes.texts("error")
        assert len(errors) == 1 and "fuse" in errors[0] and "Traceback" not in errors[0]
        assert errors[0].count(". ") == 0  # one sentence
        assert app.is_running and app.main.status.state == "ready"
        cid = app.main.conversation_id
        assert cid is not None
        (stored,) = stored_tools(store, store.messages(cid)[-1].id)
        assert stored["ok"] is False and "fuse" in str(stored["error"])

        # The next message goes to the real model, in the same conversation.
        await send(pilot, app, "Say hello.")
        await settle(pilot, app)
        last = store.messages(cid)[-1]
        assert last.role == "assistant" and last.complete and last.content.strip()
        assert app.main.chat.query(Reply).last().content == last.content
        assert app.main.status.state == "ready"


async def test_malformed_arguments_are_one_sentence_and_nothing_is_lost(
    test_plugin: str, fake_session: Session, store: Store
) -> None:
    app = AssistantApp(session=fake_session)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "/tool shout text=hi times=many")
        await settle(pilot, app)
        (error,) = notes.texts("error")
        assert "times" in error and "Traceback" not in error and app.is_running
        # Refused before anything was stored; what was typed goes back into the prompt to be fixed.
        assert store.list_conversations() == []
        assert app.main.prompt.text == "/tool shout text=hi times=many"

        app.main.prompt.clear()
        await send(pilot, app, "/tool shout text=hi times=2")
        await settle(pilot, app)
        assert tool_views(app)[-1].ok and tool_views(app)[-1].text == "HI HI"


# -- completion ---------------------------------------------------------------------------------------------------


def test_completion_of_names_then_parameters() -> None:
    entries = [ToolEntry("calculate", ("expression",)), ToolEntry("now", ("timezone",)), ToolEntry("nap", ())]
    assert complete("/tool calc", entries) == "ulate "
    assert complete("/tool n", entries) == "ap "  # alphabetical: the first that fits
    assert complete("/tool no", entries) == "w "
    assert complete("/tool calculate", entries) == ""  # the whole name: nothing to add
    assert complete("/tool calculate ", entries) == "expression="
    assert complete("/tool calculate ex", entries) == "pression="
    assert complete("/tool calculate expression=2", entries) == ""  # a value is being typed
    assert complete("/tool calculate 2+3", entries) == ""
    assert complete("/tool now timezone=UTC ", entries) == ""  # every parameter given
    assert complete("/tool now 'Europe/Par", entries) == ""  # inside quotes
    assert complete("/tool unknown ", entries) == ""
    assert complete("/toolbox", entries) == "" and complete("hello /tool calc", entries) == ""
    assert complete("/tool calc\nmore", entries) == ""


async def test_completion_offers_calculate_and_its_parameter(
    test_plugin: str, fake_session: Session, store: Store
) -> None:
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.main.prompt
        assert prompt.completer is not None and prompt.completer.entries is None  # nothing listed at start
        assert test_plugin not in sys.modules  # no plugin imported for the first frame
        await pilot.press(*"/tool calc")
        await until(pilot, lambda: prompt.suggestion == "ulate ")
        assert test_plugin in sys.modules  # listed on the first `/tool`
        assert {"calculate", "shout"} <= set(prompt.completer.names)
        await pilot.press("tab")  # takes the completion (Right does too)
        assert prompt.text == "/tool calculate "
        await until(pilot, lambda: prompt.suggestion == "expression=")

        prompt.clear()
        await pilot.press(*"/tool sh")
        await until(pilot, lambda: prompt.suggestion == "out ")
        await pilot.press("right")
        await pilot.press(*"text=hey ")
        assert prompt.suggestion == "times="
        await pilot.press("tab", "2", "enter")
        await settle(pilot, app)
        assert tool_views(app)[-1].text == "HEY HEY"

        # Without a suggestion Tab still moves the focus on.
        await pilot.press(*"hello")
        await pilot.press("tab")
        assert app.focused is not prompt


# -- side effects ask first ---------------------------------------------------------------------------------------


async def test_a_side_effect_tool_asks_cancel_refuses_and_run_runs(fake_session: Session, store: Store) -> None:
    app = AssistantApp(session=fake_session)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "/tool remember I like green tea")
        await until(pilot, lambda: isinstance(app.screen, ToolConfirmScreen))
        modal = app.screen
        assert isinstance(modal, ToolConfirmScreen)
        assert modal.tool_name == "remember" and modal.source == "builtin"
        assert "I like green tea" in json.dumps(modal.arguments)
        assert app.main.generating and app.main.status.state == "waiting for you"  # the turn waits for the answer
        await pilot.click("#cancel")
        await settle(pilot, app)

        assert not isinstance(app.screen, ToolConfirmScreen)
        assert list_facts(store) == []  # refused: nothing stored as a fact
        (refused,) = tool_views(app)
        assert not refused.ok and "not confirmed" in refused.text
        assert any("not confirmed" in n for n in notes.texts("error"))

        await send(pilot, app, "/tool remember I like green tea")
        await until(pilot, lambda: isinstance(app.screen, ToolConfirmScreen))
        await pilot.press("y")
        await settle(pilot, app)
        assert [f.text for f in list_facts(store)] == ["I like green tea"]
        assert tool_views(app)[-1].ok

        await send(pilot, app, "/tool remember I walk to work")
        await until(pilot, lambda: isinstance(app.screen, ToolConfirmScreen))
        await pilot.press("escape")  # Esc on the question: cancel, and the chat goes on
        await settle(pilot, app)
        assert [f.text for f in list_facts(store)] == ["I like green tea"]
        assert app.focused is app.main.prompt and app.main.status.state == "ready"


async def test_closing_the_app_while_asked_answers_cancel(fake_session: Session, store: Store) -> None:
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "/tool remember I have a cat")
        await until(pilot, lambda: isinstance(app.screen, ToolConfirmScreen))
        await pilot.press("ctrl+q")
    assert list_facts(store) == []
    assert app.main.idle.is_set()  # the turn's thread ended: the question did not hold the app open
    (conversation,) = store.list_conversations()
    assert store.messages(conversation.id)[0].content == "/tool remember I have a cat"


async def test_stopping_the_turn_while_asked_answers_cancel(fake_session: Session, store: Store) -> None:
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "/tool remember I have a dog")
        await until(pilot, lambda: isinstance(app.screen, ToolConfirmScreen))
        app.main.action_stop()  # what Esc does on the chat (the palette can reach it while the question is up)
        await settle(pilot, app)
        assert not isinstance(app.screen, ToolConfirmScreen) and list_facts(store) == []
        assert app.is_running and not app.main.generating


# -- the example plugin -------------------------------------------------------------------------------------------


async def test_the_example_plugin_tool_runs_from_the_tui(
    dice_site: Path, monkeypatch: pytest.MonkeyPatch, fake_session: Session, store: Store  # noqa: F811
) -> None:
    monkeypatch.syspath_prepend(str(dice_site))
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.main.prompt
        await pilot.press(*"/tool ro")
        await until(pilot, lambda: prompt.suggestion == "ll ")  # the plugin's tool is offered
        await pilot.press("tab", *"sides=20 count=3 seed=7", "enter")
        await settle(pilot, app)

        (view,) = tool_views(app)
        assert view.ok and view.result["tool"] == "roll" and view.result["source"] == "dice"
        assert "dice" in str(view.query_one(".tool-meta").render())  # where a tool comes from is shown
        rolled = json.loads(app.main.chat.query(Reply).last().content)
        assert len(rolled["rolls"]) == 3 and rolled["total"] == sum(rolled["rolls"])
        assert all(1 <= r <= 20 for r in rolled["rolls"])
        cid = app.main.conversation_id
        assert cid is not None
        (stored,) = stored_tools(store, store.messages(cid)[-1].id)
        assert stored["tool"] == "roll" and stored["arguments"] == {"sides": 20, "count": 3, "seed": 7}
