"""The checker in the Textual UI, through Pilot: a badge under each checked reply, its flagged spans highlighted in
the rendered Markdown, the "why" on Ctrl+S or a click on the badge, all restored from the stored columns when a
conversation is opened; and the badge of a turn that just finished (fake model, then the real one)."""

from __future__ import annotations

import dataclasses

import pytest
from markdown_it import MarkdownIt
from rich.segment import Segment
from textual.pilot import Pilot
from textual.widgets import Label, Static
from textual.widgets.markdown import MarkdownBlock, MarkdownFence

from assistant.checks import Flag, Grounding, ReplyCheck
from assistant.session import Session
from assistant.turn import TurnResult
from storage.db import Store
from tests.fakes import FakeBackend
from tests.test_tui import SIZE, record_notifications, send, settle
from tui.app import AssistantApp
from tui.screens.chat_checks import NOT_CHECKED
from tui.screens.check_why import CheckWhyScreen
from tui.widgets.check_badge import CheckBadge
from tui.widgets.checked_markdown import MARKS, Highlight, mark
from tui.widgets.message import Reply

REPLY = "Write to [email] about the **Lisbon** trip.\n\n- The museum opens at 9 am on Mondays.\n- Trams run late."
UNSUPPORTED = "The museum opens at 9 am on Mondays."
UNSUPPORTED_WHY = "the number '9' appears in no source"


def lisbon_check() -> ReplyCheck:
    start = REPLY.index(UNSUPPORTED)
    return ReplyCheck(
        policy="redact",
        privacy=[{"type": "email", "start": 9, "end": 16, "action": "masked"}],
        grounding=Grounding(0.41, [Flag(start, start + len(UNSUPPORTED), UNSUPPORTED, UNSUPPORTED_WHY)]),
        sources=2,
    )


def seed(store: Store) -> tuple[int, int, int]:
    """A conversation with a checked reply and one from before the checker (no verdict)."""
    cid = store.create_conversation("Lisbon trip")
    store.add_message(cid, "user", "I am going to Lisbon in May.")
    checked = store.add_message(cid, "assistant", REPLY, model="smollm2", finish_reason="stop")
    check = lisbon_check()
    assert REPLY[9:16] == "[email]" and check.badge == "unsupported"
    store.update_message(checked, checks=check.to_json(), badge=check.badge)
    store.add_message(cid, "user", "Anything else?")
    older = store.add_message(cid, "assistant", "Try the **pastéis de nata**.", model="smollm2", finish_reason="stop")
    return cid, checked, older


def blocks(reply: Reply) -> list[MarkdownBlock]:
    return [b for b in reply.query(MarkdownBlock) if b._content.plain]


def styled(block: MarkdownBlock, style: str) -> list[str]:
    """The texts of ``block`` carrying the component style ``style`` (``.check--masked``, ``.strong``)."""
    content = block._content
    return [content.plain[s.start : s.end] for s in content.spans if s.style == style]


def background_of(block: MarkdownBlock, text: str) -> object:
    """The background the terminal shows under ``text`` (rendered, so the CSS must really apply)."""
    for y in range(block.size.height):
        for segment in block.render_line(y):
            assert isinstance(segment, Segment)
            if text in segment.text and segment.style is not None:
                return segment.style.bgcolor
    raise AssertionError(f"{text!r} is not on screen")


async def open_and_wait(pilot: Pilot, app: AssistantApp, cid: int) -> None:
    await settle(pilot, app)
    await app.main.open_conversation(cid)
    for _ in range(2000):  # the Markdown blocks are built after the widget mounts
        await pilot.pause()
        if all(blocks(r) for r in app.main.chat.replies):
            return
    raise AssertionError("the replies never rendered")


async def test_a_stored_verdict_shows_its_badge_highlights_and_why(fake_session: Session, store: Store) -> None:
    cid, checked, older = seed(store)
    app = AssistantApp(session=fake_session)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await open_and_wait(pilot, app, cid)
        first, second = app.main.chat.replies
        assert (first.message_id, second.message_id) == (checked, older)

        # The badge, as a word, with what it counts.
        (badge,) = first.query(CheckBadge)
        words = [str(label.render()) for label in badge.query(Label)]
        assert words[0] == "unsupported" and "1 masked" in words[1] and "1 unsupported" in words[1]
        assert badge.query_one(".badge-word").has_class("-unsupported")

        # The flagged sentence and the masked placeholder are highlighted; Markdown still renders (bold, list).
        intro, item, _ = blocks(first)
        assert intro._content.plain == "Write to [email] about the Lisbon trip."  # no bracket left on screen
        assert styled(intro, ".check--masked") == ["[email]"] and styled(intro, ".strong") == ["Lisbon"]
        assert styled(item, ".check--unsupported") == [UNSUPPORTED]
        assert item.query_ancestor("MarkdownBulletList")
        plain_bg = background_of(intro, "Write to")
        assert background_of(intro, "[email]") != plain_bg
        assert background_of(item, "museum") != plain_bg
        assert not any(char in MARKS for b in blocks(first) for char in b._content.plain)

        # The older reply has no verdict: no badge, ordinary Markdown.
        assert not second.query(CheckBadge) and second.badge is None
        (nata,) = blocks(second)
        assert styled(nata, ".strong") == ["pastéis de nata"] and not styled(nata, ".check--unsupported")

        # Ctrl+S says why for the picked reply (click it), and Esc closes.
        await pilot.click(first.query_one(".meta"))
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, CheckWhyScreen) and app.screen.badge == "unsupported"
        why = str(app.screen.query_one("#why-text", Static).render())
        for line in lisbon_check().why():
            assert line in why
        assert UNSUPPORTED_WHY in why and "Masked 1 item (email)" in why
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CheckWhyScreen)

        # A click on the badge says the same.
        await pilot.click(badge.query_one(".badge-summary"))
        await pilot.pause()
        assert isinstance(app.screen, CheckWhyScreen) and app.screen.check is not None
        await pilot.press("escape")
        await pilot.pause()

        # The last reply, never checked: Ctrl+S says so instead of opening anything.
        await pilot.click(first.query_one(".meta"))  # again: no reply picked, the last one is meant
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, CheckWhyScreen) and NOT_CHECKED in notes.texts()


async def test_a_reply_without_a_verdict_shows_no_badge(fake_session: Session, store: Store) -> None:
    cid = store.create_conversation("Plain")
    store.add_message(cid, "user", "Hello")
    store.add_message(cid, "assistant", "Hello! How can I *help*?", model="smollm2", finish_reason="stop")
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await open_and_wait(pilot, app, cid)
        (reply,) = app.main.chat.replies
        assert reply.badge is None and reply.check is None and not app.main.chat.query(CheckBadge)
        (block,) = blocks(reply)
        assert block._content.plain == "Hello! How can I help?" and styled(block, ".em") == ["help"]


def test_marking_keeps_the_markdown_structure() -> None:
    """The brackets stay off block syntax and out of code, so the parse is the same as without them."""
    text = "# Trip\n\n1. **Alfama** first.\n2. Belém.\n\n```\nprint('[email]')\n```\n\n> Book _ahead_."
    spans = [
        Highlight(0, len(text), "unsure"),  # everything: only the visible text of each line is wrapped
        Highlight(text.index("Alfama"), text.index(" first"), "unsupported"),
        Highlight(text.index("[email]"), text.index("[email]") + 7, "masked"),  # inside code: not marked
    ]
    marked = mark(text, spans)
    parser = MarkdownIt("gfm-like")
    assert [t.type for t in parser.parse(marked)] == [t.type for t in parser.parse(text)]
    assert "print('[email]')" in marked and marked.startswith("# \u2e57Trip\u2e58")
    assert "\u2e57\u2e55**Alfama**" not in marked  # one span's brackets close before another's open
    assert mark("already \u2e55 here", spans[:1]) == "already \u2e55 here"  # a text holding a bracket stays as it is


async def test_a_fenced_code_block_is_untouched(fake_session: Session, store: Store) -> None:
    text = "Run this:\n\n```\nssh [email]\n```"
    cid = store.create_conversation("Code")
    store.add_message(cid, "user", "How do I log in?")
    mid = store.add_message(cid, "assistant", text, model="smollm2", finish_reason="stop")
    at = text.index("[email]")
    check = ReplyCheck(privacy=[{"type": "email", "start": at, "end": at + 7, "action": "masked"}])
    store.update_message(mid, checks=check.to_json(), badge=check.badge)
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await open_and_wait(pilot, app, cid)
        (reply,) = app.main.chat.replies
        assert reply.badge == "masked"
        fence = reply.query_one(MarkdownFence)
        assert fence.code == "ssh [email]"


def turn_has_checks() -> bool:
    return "checks" in {f.name for f in dataclasses.fields(TurnResult)}


async def test_a_finished_turn_shows_the_stored_text_and_its_badge(
    fake_session: Session, fake_backend: FakeBackend, store: Store
) -> None:
    if not turn_has_checks():
        pytest.skip("the chat turn does not carry the checker's verdict yet (TurnResult has no checks field)")
    fake_session.settings.grounding = False  # privacy alone: the verdict is known in advance
    fake_backend.replies = ["Sure: write to maria.santos@example.org and she will answer."]
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "How do I reach the guide?")
        await settle(pilot, app)
        stored = store.messages(app.main.conversation_id)[-1]  # type: ignore[arg-type]
        assert "maria.santos" not in stored.content and "[email]" in stored.content
        assert stored.badge == "masked"
        reply = app.main.chat.replies[-1]
        assert reply.content == stored.content and reply.badge == "masked"
        (badge,) = reply.query(CheckBadge)
        assert str(badge.query_one(".badge-word", Label).render()) == "masked"
        (block,) = blocks(reply)
        assert "maria" not in block._content.plain and styled(block, ".check--masked") == ["[email]"]
        # and the same when the conversation is opened again
        await open_and_wait(pilot, app, app.main.conversation_id)  # type: ignore[arg-type]
        (block,) = blocks(app.main.chat.replies[-1])
        assert styled(block, ".check--masked") == ["[email]"] and app.main.chat.query(CheckBadge)


@pytest.mark.model
async def test_a_real_turn_shows_its_badge(real_session: Session, store: Store) -> None:
    if not turn_has_checks():
        pytest.skip("the chat turn does not carry the checker's verdict yet (TurnResult has no checks field)")
    app = AssistantApp(session=real_session)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "My sister Ana lives in Porto. Where does my sister live?")
        await settle(pilot, app)
        stored = store.messages(app.main.conversation_id)[-1]  # type: ignore[arg-type]
        assert stored.badge in ("ok", "check", "unsupported", "masked")  # grounding is on by default
        reply = app.main.chat.replies[-1]
        assert reply.content == stored.content and reply.badge == stored.badge
        (badge,) = reply.query(CheckBadge)
        assert str(badge.query_one(".badge-word", Label).render()) == stored.badge
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, CheckWhyScreen)
        why = str(app.screen.query_one("#why-text", Static).render())
        assert all(line in why for line in ReplyCheck.from_json(stored.checks).why())  # type: ignore[union-attr]
