"""The checker on a chat turn: the privacy policy on what is streamed and stored, the grounding verdict stored with
the reply and returned, the sources it is checked against, and the one-shot CLI's `--json` contract.

The policy cases script the model's reply (the fake backend) so that it says exactly the leak under test; the
detectors, the store and the session are real. The end-to-end tests run the bundled model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.checks import ReplyCheck
from assistant.checks.privacy import apply_policy, find_pii
from assistant.config import Settings, save_setting
from assistant.reply_check import privacy_items, sources_for, stated
from assistant.session import Session
from storage.db import Store
from storage.facts import add_fact
from tests.fakes import FakeBackend
from tests.test_cli_chat import run_cli

CARD = "4111 1111 1111 1111"
EMAIL = "ana.silva@example.org"
KEY = "sk-live-9fK2mQ7xVb3Lr8Tz1Yw4Np6Hd0Cs5Ju"


def session_with(store: Store, settings: Settings, home: Path, reply: str, **changes: object) -> Session:
    settings = settings.model_copy(update=changes)
    backend = FakeBackend([reply])
    return Session(store, settings, home=home, loader=lambda spec, s: backend, use_memory=False)


def run_turn(session: Session, text: str, conversation_id: int | None = None) -> tuple[list[str], object]:
    """Send ``text``; every piece the screen would have shown, in order, and the result."""
    turn = session.start_turn(text, conversation_id)
    shown = [chunk.text for chunk in turn.stream()]
    assert turn.result is not None
    return shown, turn.result


def prefixes(pieces: list[str]) -> list[str]:
    out, text = [], ""
    for piece in pieces:
        text += piece
        out.append(text)
    return out


def test_the_users_own_data_is_shown_back(store: Store, settings: Settings, home: Path) -> None:
    session = session_with(store, settings, home, f"Sure: your email is {EMAIL} and your card is {CARD}.")
    shown, result = run_turn(session, f"My email is {EMAIL} and my card number is {CARD}. Repeat them please.")
    assert "".join(shown) == result.reply == store.get_message(result.message_id).content  # type: ignore[attr-defined]
    assert EMAIL in result.reply and CARD in result.reply  # type: ignore[attr-defined]
    actions = {item["type"]: item["action"] for item in result.checks["privacy"]}  # type: ignore[attr-defined]
    assert actions == {"email": "shown", "card": "shown"}
    assert result.badge != "masked"  # type: ignore[attr-defined]


def test_data_from_memory_is_masked_while_streaming_and_stored(store: Store, settings: Settings, home: Path) -> None:
    session = session_with(store, settings, home, f"You told me before: write to {EMAIL}, card {CARD}. Anything else?")
    shown, result = run_turn(session, "How can people reach me?")
    assert all(EMAIL not in text and "1111" not in text for text in prefixes(shown))  # never on screen, not once
    stored = store.get_message(result.message_id)  # type: ignore[attr-defined]
    assert stored.content == result.reply == "".join(shown)  # type: ignore[attr-defined]
    assert "[email]" in stored.content and "[card]" in stored.content and EMAIL not in stored.content
    verdict = ReplyCheck.from_json(stored.checks)
    assert verdict is not None and stored.badge == verdict.badge == "masked"
    for item in verdict.privacy:  # offsets point at the placeholders in the reply as shown
        assert item["action"] == "masked"
        assert stored.content[item["start"] : item["end"]] == f"[{item['type']}]"


def test_a_secret_is_masked_even_when_the_user_typed_it(store: Store, settings: Settings, home: Path) -> None:
    session = session_with(store, settings, home, f"Set OPENAI_API_KEY={KEY} in your shell and run it again.")
    shown, result = run_turn(session, f"My key is {KEY}; how do I set it?")
    assert all(KEY not in text for text in prefixes(shown))
    assert KEY not in result.reply and "[secret]" in result.reply  # type: ignore[attr-defined]
    assert [i["action"] for i in result.checks["privacy"]] == ["masked"]  # type: ignore[attr-defined]


def test_block_withholds_the_whole_reply(store: Store, settings: Settings, home: Path) -> None:
    session = session_with(store, settings, home, f"Her card is {CARD}, as you know.", privacy="block")
    shown, result = run_turn(session, "What is Ana's card?")
    assert all("1111" not in text for text in prefixes(shown))
    stored = store.get_message(result.message_id)  # type: ignore[attr-defined]
    assert stored.content == result.reply and "withheld" in stored.content.lower() and "card" in stored.content
    assert result.checks["blocked"] is True and result.badge == "masked"  # type: ignore[attr-defined]


def test_warn_shows_and_flags_but_still_masks_secrets(store: Store, settings: Settings, home: Path) -> None:
    session = session_with(store, settings, home, f"Mail {EMAIL} with the token {KEY}.", privacy="warn")
    _, result = run_turn(session, "Who do I write to?")
    assert EMAIL in result.reply and KEY not in result.reply  # type: ignore[attr-defined]
    actions = sorted(i["action"] for i in result.checks["privacy"])  # type: ignore[attr-defined]
    assert actions == ["masked", "warned"]


def test_off_checks_nothing(store: Store, settings: Settings, home: Path) -> None:
    session = session_with(store, settings, home, f"Her card is {CARD}.", privacy="off", grounding=False)
    shown, result = run_turn(session, "What is Ana's card?")
    assert CARD in "".join(shown) and result.checks is None  # type: ignore[attr-defined]
    assert store.get_message(result.message_id).badge is None  # type: ignore[attr-defined]


def test_a_wrong_fact_about_the_user_is_unsupported(store: Store, settings: Settings, home: Path) -> None:
    session = session_with(store, settings, home, "Your sister Ana lives in Lisbon and works as a nurse.")
    conversation = store.create_conversation()
    store.add_message(conversation, "user", "My sister Ana lives in Porto. She is a teacher.")
    _, result = run_turn(session, "Where does my sister live?", conversation)
    grounding = result.checks["grounding"]  # type: ignore[attr-defined]
    assert grounding["score"] is not None and grounding["score"] < 0.52 and result.badge == "unsupported"  # type: ignore[attr-defined]
    flagged = grounding["flagged"][0]
    assert result.reply[flagged["start"] : flagged["end"]] == flagged["text"]  # type: ignore[attr-defined]
    assert "Lisbon" in flagged["text"] and flagged["reason"]


def test_a_grounded_reply_is_ok_and_a_general_one_says_there_was_nothing_to_check(
    store: Store, settings: Settings, home: Path
) -> None:
    session = session_with(store, settings, home, "Your sister Ana lives in Porto.")
    conversation = store.create_conversation()
    store.add_message(conversation, "user", "My sister Ana lives in Porto. She is a teacher.")
    _, result = run_turn(session, "Where does my sister live?", conversation)
    assert result.checks["grounding"]["score"] >= 0.52 and result.badge == "ok"  # type: ignore[attr-defined]

    general = session_with(store, settings, home, "The capital of France is Paris.")
    _, result = run_turn(general, "What is the capital of France?")
    assert result.checks["grounding"] == {"score": None, "flagged": []}  # type: ignore[attr-defined]
    assert result.checks["sources"] == 0 and result.badge == "check"  # type: ignore[attr-defined]


def test_facts_are_sources(store: Store, settings: Settings, home: Path, embedder: object) -> None:
    add_fact(store, "My dog is called Miso.")
    settings = settings.model_copy(update={"memory": True})
    backend = FakeBackend(["Your dog is called Rex."])
    from storage.memory import Memory

    memory = Memory(store, home, embedder=embedder)  # type: ignore[arg-type]
    session = Session(store, settings, home=home, loader=lambda spec, s: backend, memory=memory)
    _, result = run_turn(session, "What is my dog called?")
    assert result.checks["sources"] >= 1 and result.badge == "unsupported"  # type: ignore[attr-defined]
    session.close()


def test_questions_and_requests_are_no_sources() -> None:
    said = ["What is the capital of France?", "Tell me about Lisbon.", "My sister is Ana. Where does she live?"]
    assert stated(said) == ["My sister is Ana."]
    assert sources_for(said, ["I am vegetarian."], ["Ana moved to Porto in 2019."]) == [
        "My sister is Ana.",
        "I am vegetarian.",
        "Ana moved to Porto in 2019.",
    ]


def test_privacy_items_point_into_the_shown_text() -> None:
    text = f"Write to {EMAIL} or call +44 20 7946 0958; card {CARD}."
    outcome = apply_policy(text, find_pii(text), ["call me on +44 20 7946 0958"], "redact")
    items = privacy_items(outcome)
    assert [i["action"] for i in items] == ["masked", "shown", "masked"]
    for item in items:
        span = outcome.text[item["start"] : item["end"]]
        assert span == (f"[{item['type']}]" if item["action"] == "masked" else "+44 20 7946 0958")


# -- end to end: the bundled model ---------------------------------------------------------------------------------


def test_real_model_reply_carries_its_verdict_and_unsure_spans(real_session: Session, store: Store) -> None:
    turn = real_session.start_turn("My cat Miso was born in 2019 in Porto. Tell me a short story about her.")
    list(turn.stream())
    result = turn.result
    assert result is not None and result.checks is not None and result.badge in ("ok", "check", "unsupported")
    assert turn.logprobs and all(lp <= 0.0 for _, lp in turn.logprobs)  # recorded while it streamed
    assert turn.sources == ["My cat Miso was born in 2019 in Porto."]
    stored = store.get_message(result.message_id)
    assert stored.badge == result.badge and ReplyCheck.from_json(stored.checks) is not None
    for flag in result.checks["grounding"]["flagged"]:
        assert result.reply[flag["start"] : flag["end"]] == flag["text"]


def test_cli_json_has_the_checks_and_stderr_says_what_was_masked(home: Path) -> None:
    save_setting("max_tokens", 24, home)
    done = run_cli("chat", "--json", "--no-memory", "Say hello to Ana.")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    checks = payload["checks"]
    assert set(checks) >= {"privacy", "grounding"} and isinstance(checks["privacy"], list)
    assert set(checks["grounding"]) == {"score", "flagged"} and payload["badge"] in ("ok", "check", "unsupported")
    for item in checks["privacy"]:
        assert set(item) == {"type", "start", "end", "action"}


@pytest.mark.parametrize("policy", ["off", "warn", "redact", "block"])
def test_the_policy_setting_is_validated_and_saved(home: Path, policy: str) -> None:
    save_setting("privacy", policy, home)
    from assistant.config import load_settings

    assert load_settings(home).privacy == policy


def test_the_verdict_survives_export_and_import(store: Store, settings: Settings, home: Path, tmp_path: Path) -> None:
    from storage.transfer import export_json, import_bytes

    session = session_with(store, settings, home, f"You told me before: write to {EMAIL}.")
    _, result = run_turn(session, "How can people reach me?")
    exported = export_json(store, result.conversation_id)  # type: ignore[attr-defined]
    reply = json.loads(exported)["conversations"][0]["messages"][1]
    assert reply["badge"] == "masked" and reply["checks"]["privacy"][0]["action"] == "masked"
    with Store(tmp_path / "other.db") as other:
        imported = import_bytes(other, exported.encode(), "export.json")
        conversation = other.list_conversations()[0]
        copy = other.messages(conversation.id)[1]
        assert (
            imported
            and copy.badge == "masked"
            and ReplyCheck.from_json(copy.checks)
            == ReplyCheck.from_json(
                store.get_message(result.message_id).checks  # type: ignore[attr-defined]
            )
        )
    bad = exported.replace('"badge": "masked"', '"badge": "great"')
    with Store(tmp_path / "third.db") as third, pytest.raises(Exception, match="badge"):
        import_bytes(third, bad.encode(), "export.json")


def test_history_shows_the_verdict(store: Store, settings: Settings, home: Path) -> None:
    from storage.transfer import export_markdown

    session = session_with(store, settings, home, f"You told me before: write to {EMAIL}.")
    _, result = run_turn(session, "How can people reach me?")
    conversation = str(result.conversation_id)  # type: ignore[attr-defined]
    assert "checked: masked" in export_markdown(store, result.conversation_id)  # type: ignore[attr-defined]
    shown = run_cli("history", "show", conversation)
    assert shown.returncode == 0 and "[checked: masked]" in shown.stdout and "[email]" in shown.stdout
    data = json.loads(run_cli("history", "show", conversation, "--json").stdout)
    assert data["messages"][1]["badge"] == "masked" and data["messages"][1]["checks"]["privacy"][0]["type"] == "email"


def test_a_recalled_note_is_a_source_but_never_counts_as_typed(store: Store, settings: Settings, home: Path) -> None:
    """Notes of recalled snippets ride in the history's user messages; what they hold comes from other
    conversations, so it is masked like any other data the user did not type here."""
    from types import SimpleNamespace

    from assistant.memory_prompt import MemoryBlock, NotedHistory
    from storage.records import Message

    session = session_with(store, settings, home, "")
    typed = Message(1, 1, "user", "Who should I write to?", "2026-11-25T00:00:00+00:00")
    noted = NotedHistory(
        [{"role": "user", "content": f"(From an earlier conversation: write to {EMAIL}.)\n\n" + typed.content}]
    )
    turn = SimpleNamespace(guard=None, sources=[])
    session._attach_checker(turn, "And again?", [typed], noted, MemoryBlock())  # type: ignore[arg-type]
    assert any(EMAIL in source for source in turn.sources)
    shown = turn.guard.feed(f"Write to {EMAIL} today. ") + turn.guard.finish()[0]  # type: ignore[attr-defined]
    assert EMAIL not in shown and "[email]" in shown
