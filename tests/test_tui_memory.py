"""Semantic memory in the Textual UI, through Pilot: the real Memory (bundled MiniLM embedder, chromadb in tmp_path),
a real SQLite store, and the fake model (what the model says is not what these tests are about)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static
from textual.widgets._collapsible import CollapsibleTitle

from assistant.config import Settings, load_settings
from assistant.errors import NotFoundError
from assistant.session import Session
from storage.db import Store
from storage.embedder import Embedder
from storage.facts import add_fact, list_facts, recalls_for
from storage.memory import Memory
from tests.fakes import FakeBackend
from tests.test_tui import SIZE, send, settle
from tui.app import AssistantApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.memory import MemoryScreen
from tui.widgets.message import Reply, UserMessage
from tui.widgets.recalled import Recalled

TOMATO_QUESTION = "My tomato plants in the greenhouse have yellow leaves with brown spots. What is wrong with them?"
TOMATO_ANSWER = "Yellow leaves with brown spots on tomatoes usually mean early blight; remove the affected leaves."


@pytest.fixture
def memory(store: Store, home: Path, embedder: Embedder) -> Memory:
    return Memory(store, home, embedder=embedder)


@pytest.fixture
def session(
    store: Store, settings: Settings, home: Path, memory: Memory, fake_backend: FakeBackend
) -> Iterator[Session]:
    session = Session(store, settings, home=home, loader=lambda spec, s: fake_backend, memory=memory)
    yield session
    session.close()


def seed_garden(store: Store, memory: Memory) -> tuple[int, int, int]:
    """An earlier conversation about tomatoes, indexed: (conversation, question, answer) ids."""
    cid = store.create_conversation("Tomatoes")
    question = store.add_message(cid, "user", TOMATO_QUESTION)
    answer = store.add_message(cid, "assistant", TOMATO_ANSWER, model="fake", finish_reason="stop")
    other = store.create_conversation("Taxes")
    store.add_message(other, "user", "When is the deadline for filing my income tax return this year?")
    memory.index_pending()
    assert memory.pending_count() == 0
    return cid, question, answer


async def until(pilot: Pilot, condition: object, rounds: int = 12000) -> None:
    """Wait for a condition, bounded by rounds (the embedder answers in milliseconds once loaded)."""
    for _ in range(rounds):
        if condition():  # type: ignore[operator]
            return
        await pilot.pause(0.05)
    raise AssertionError("the condition never became true")


async def test_a_reply_shows_what_it_recalled_collapsed_live_and_from_the_database(
    session: Session, store: Store, memory: Memory
) -> None:
    seed_garden(store, memory)
    add_fact(store, "I grow vegetables in a greenhouse in Porto.")
    app = AssistantApp(session=session)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Why do my tomato plants have yellow leaves with brown spots?")
        await settle(pilot, app)

        reply = app.main.chat.query(Reply).last()
        assert reply.message_id is not None
        recorded = recalls_for(store, reply.message_id)
        snippets = [r for r in recorded if r.memory_message_id is not None]
        assert snippets and any(r.fact_id is not None for r in recorded)
        recalled = reply.query_one(Recalled)
        assert recalled.title == f"recalled {len(recorded)} memories"
        assert recalled.collapsed  # out of the way until asked for
        shown = [item.text for item in recalled.items]
        assert "I grow vegetables in a greenhouse in Porto." in shown
        assert TOMATO_QUESTION in shown or TOMATO_ANSWER in shown
        snippet = next(i for i in recalled.items if i.kind == "snippet")
        assert snippet.score is not None and snippet.created_at and snippet.created_at[:4] == "2026"

        await pilot.click(recalled.query_one(CollapsibleTitle))
        assert not recalled.collapsed
        assert not reply.has_class("-selected")  # opening the list does not pick the reply

        # The same section for the reply loaded back from the database.
        conversation_id = app.main.conversation_id
        await app.main.open_conversation(None)
        await app.main.open_conversation(conversation_id)
        await pilot.pause()
        loaded = app.main.chat.query(Reply).last().query_one(Recalled)
        assert loaded.title == recalled.title and loaded.collapsed
        assert sorted(i.text for i in loaded.items) == sorted(shown)


async def test_the_memory_screen_lists_searches_adds_and_deletes_facts(session: Session, store: Store) -> None:
    add_fact(store, "I am vegetarian.")
    add_fact(store, "My sister lives in Lisbon.")
    app = AssistantApp(session=session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        screen = app.screen
        assert isinstance(screen, MemoryScreen)
        facts = screen.query_one("#facts", OptionList)
        assert facts.option_count == 2

        await pilot.press(*"lisbon")  # the search box has the focus
        assert [f.text for f in screen.facts] == ["My sister lives in Lisbon."] and facts.option_count == 1

        # Del acts on the highlighted fact even from the search box, with nothing picked in the list; it asks first.
        assert facts.highlighted is None and isinstance(app.focused, Input)
        await pilot.press("delete")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert len(list_facts(store)) == 2
        await pilot.press("delete", "y")
        assert [f.text for f in list_facts(store)] == ["I am vegetarian."]
        await pilot.press("ctrl+u")  # clear the search
        assert facts.option_count == 1

        screen.query_one("#new-fact", Input).focus()
        await pilot.press(*"I cycle to work.", "enter")
        assert [f.text for f in list_facts(store)] == ["I cycle to work.", "I am vegetarian."]
        assert facts.option_count == 2  # the search was cleared, so the new fact shows
        await pilot.press("escape")
        assert not isinstance(app.screen, MemoryScreen)


async def test_the_memory_screen_warns_when_a_fact_looks_like_a_secret(session: Session, store: Store) -> None:
    app = AssistantApp(session=session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        screen = app.screen
        assert isinstance(screen, MemoryScreen)
        screen.query_one("#new-fact", Input).focus()
        await pilot.press(*"My wifi password is hunter2", "enter")
        await pilot.pause()
        warnings = [n.message for n in app._notifications if n.severity == "warning"]
        assert any("looks like it holds" in w for w in warnings), warnings
        assert not any("hunter2" in w for w in warnings)  # the warning never repeats the secret
        assert [f.text for f in list_facts(store)] == ["My wifi password is hunter2"]  # stored all the same


async def test_the_memory_screen_finds_and_forgets_an_earlier_message(
    session: Session, store: Store, memory: Memory
) -> None:
    cid, question, answer = seed_garden(store, memory)
    app = AssistantApp(session=session)
    async with app.run_test(size=SIZE) as pilot:
        await app.main.open_conversation(cid)
        await pilot.press("ctrl+r")
        screen = app.screen
        assert isinstance(screen, MemoryScreen)
        screen.query_one("#snippet-query", Input).focus()
        await pilot.press(*"sick tomato plants", "enter")  # by meaning: neither word needs to match exactly
        await until(pilot, lambda: screen.snippets)
        ids = [r.message_id for r in screen.snippets]
        assert ids[0] in (question, answer)
        target = ids[0]

        note = screen.query_one("#snippet-note", Static)
        assert str(note.render()).startswith(f"{len(ids)} found.")
        snippets = screen.query_one("#snippets", OptionList)
        snippets.focus()  # nothing highlighted yet: Del acts on the first
        await pilot.press("delete")
        assert isinstance(app.screen, ConfirmScreen)  # forgetting asks first
        await pilot.press("y")
        await until(pilot, lambda: target not in [r.message_id for r in screen.snippets])
        # The count follows what is left (it said one more before).
        left = len(ids) - 1
        assert str(note.render()).startswith(f"{left} found." if left else "Nothing found."), note.render()

        with pytest.raises(NotFoundError):
            store.get_message(target)
        assert target not in [r.message_id for r in memory.search("sick tomato plants", 10)]
        assert target not in [r.message_id for r in memory.search("tomato plants", 10, mode="vector")]
        await pilot.press("escape")
        assert not isinstance(app.screen, MemoryScreen)
        await pilot.pause()
        shown = [w.message_id for w in app.main.chat.query(UserMessage)] + [r.message_id for r in app.main.chat.replies]
        assert target not in shown and len(shown) == 1  # the open conversation shows what is left of it


async def test_memory_toggle_flips_the_session_the_status_bar_and_the_setting(
    session: Session, store: Store, memory: Memory, home: Path
) -> None:
    seed_garden(store, memory)
    app = AssistantApp(session=session)
    async with app.run_test(size=SIZE) as pilot:
        status = app.main.status
        assert session.use_memory and status.memory == "on" and "memory on" in str(status.render())

        await pilot.press("ctrl+g")
        assert not session.use_memory and status.memory == "off" and "memory off" in str(status.render())
        assert load_settings(home).memory is False
        await send(pilot, app, "Why do my tomato plants have yellow leaves with brown spots?")
        await settle(pilot, app)
        reply = app.main.chat.query(Reply).last()
        assert not reply.query(Recalled) and recalls_for(store, reply.message_id) == []  # type: ignore[arg-type]

        # Back on, from the command palette.
        await pilot.press("ctrl+p")
        await pilot.press(*"toggle memory")
        for _ in range(30000):  # the palette searches in the background
            await pilot.pause(0.02)
            found = app.screen.query_one(CommandList)
            if found.option_count and "Toggle memory" in str(found.get_option_at_index(0).prompt):
                break
        else:
            raise AssertionError("the palette never offered the command")
        await pilot.press("enter")
        await pilot.pause()
        assert session.use_memory and status.memory == "on" and load_settings(home).memory is True
        await send(pilot, app, "Why do my tomato plants have yellow leaves with brown spots?")
        await settle(pilot, app)
        assert app.main.chat.query(Reply).last().query(Recalled)
