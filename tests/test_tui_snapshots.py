"""Screenshots of the main screens, compared with the stored SVGs (``pytest --snapshot-update`` rewrites them).

The model is the fake one and the conversation is written straight to the store, so every frame is the same on
every run: fixed terminal size, no clock, no timestamps on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from assistant.config import Settings
from assistant.session import Session
from storage.db import Store
from tests.fakes import FakeBackend
from tui.app import AssistantApp

SIZE = (110, 34)


@pytest.fixture
def fake_session(store: Store, settings: Settings, home: Path, fake_backend: FakeBackend) -> Session:
    """As users see it: the fake model, but the real memory on (the status bar shows it)."""
    session = Session(store, settings, home=home, loader=lambda spec, s: fake_backend, use_memory=True)
    yield session  # type: ignore[misc]
    session.close()


async def idle(pilot: Pilot) -> None:
    """Wait for the chat screen and the model-loading worker, so the status reads "ready" (a condition: the bound
    only stops a broken test; a snapshot taken before then would differ on a busy machine)."""
    app = pilot.app
    for _ in range(60000):
        await pilot.pause(0.01)
        if app.screen.query("#prompt") and not any(w.is_running for w in app.workers):
            break
    else:
        raise AssertionError("the app never became idle")
    app.screen.query_one("#prompt").cursor_blink = False  # a blinking cursor would make the frame depend on the clock
    await pilot.pause()


def seed_conversation(store: Store) -> int:
    store.create_conversation("Sourdough bread", created_at="2026-11-01T09:00:00.000+00:00")
    cid = store.create_conversation("Trip to Lisbon", created_at="2026-11-02T09:00:00.000+00:00")
    store.add_message(cid, "user", "What should I see in Lisbon in two days?")
    store.add_message(
        cid,
        "assistant",
        "Two days is enough for the highlights:\n\n"
        "1. **Alfama**: the old quarter, best on foot.\n"
        "2. **Belém**: the tower and the monastery.\n"
        "3. Tram `28` across the hills.\n\n"
        "Book the monastery ahead in summer.",
        model="smollm2",
        tokens_per_s=97.3,
        finish_reason="stop",
    )
    store.add_message(cid, "user", "And where do I eat pastéis de nata?")
    store.add_message(
        cid, "assistant", "The bakery in Belém is the", model="smollm2", complete=0, finish_reason="cancelled"
    )
    return cid


def test_empty_main_screen(snap_compare: Callable[..., bool], fake_session: Session) -> None:
    assert snap_compare(AssistantApp(session=fake_session), terminal_size=SIZE, run_before=idle)


def test_conversation(snap_compare: Callable[..., bool], fake_session: Session, store: Store) -> None:
    cid = seed_conversation(store)

    async def open_it(pilot: Pilot) -> None:
        await idle(pilot)
        await pilot.app.main.open_conversation(cid)  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(AssistantApp(session=fake_session), terminal_size=SIZE, run_before=open_it)


def test_help_screen(snap_compare: Callable[..., bool], fake_session: Session) -> None:
    async def open_help(pilot: Pilot) -> None:
        await idle(pilot)
        await pilot.press("f1")

    assert snap_compare(AssistantApp(session=fake_session), terminal_size=SIZE, run_before=open_help)


def test_model_switcher(snap_compare: Callable[..., bool], fake_session: Session) -> None:
    async def open_switcher(pilot: Pilot) -> None:
        await idle(pilot)
        await pilot.press("ctrl+o")

    assert snap_compare(AssistantApp(session=fake_session), terminal_size=SIZE, run_before=open_switcher)
