"""A chat turn: the user's message is stored first, the reply is stored as it streams, nothing is lost."""

from __future__ import annotations

import threading

import pytest

from assistant.errors import InputError, ModelError
from assistant.session import Session
from storage.db import Store
from tests.fakes import FakeBackend


def run(turn) -> str:  # type: ignore[no-untyped-def]
    return "".join(chunk.text for chunk in turn.stream())


# -- orchestration, on the fake model --------------------------------------------------------------------------


def test_a_turn_stores_both_messages_with_their_records(fake_session: Session, store: Store) -> None:
    turn = fake_session.start_turn("Hello there")
    assert run(turn) == "Hello from the fake model."
    result = turn.result
    assert result is not None and result.finish_reason == "stop"
    messages = store.messages(result.conversation_id)
    assert [(m.role, m.content) for m in messages] == [("user", "Hello there"), ("assistant", "Hello from the fake model.")]
    reply = messages[1]
    assert reply.complete and reply.model == "fake" and reply.completion_tokens == 5
    assert reply.prompt_tokens == result.prompt_tokens > 0


def test_history_goes_into_the_next_prompt(fake_session: Session, fake_backend: FakeBackend) -> None:
    fake_backend.replies = ["Nice to meet you.", "Your name is Ada."]
    first = fake_session.start_turn("My name is Ada.")
    run(first)
    second = fake_session.start_turn("What is my name?", first.conversation_id)
    run(second)
    assert "My name is Ada." in fake_backend.prompts[1] and "Nice to meet you." in fake_backend.prompts[1]


def test_the_users_message_is_stored_even_when_the_model_cannot_load(store: Store, settings, home) -> None:  # type: ignore[no-untyped-def]
    def broken(spec, s):  # type: ignore[no-untyped-def]
        raise ModelError("The model file is corrupt.")

    session = Session(store, settings, home=home, loader=broken)
    with pytest.raises(ModelError):
        session.start_turn("please keep this")
    (conv,) = store.list_conversations()
    assert [m.content for m in store.messages(conv.id)] == ["please keep this"]


def test_stopping_keeps_the_partial_reply_marked_incomplete(fake_session: Session, store: Store, fake_backend) -> None:  # type: ignore[no-untyped-def]
    fake_backend.replies = ["one two three four five six"]
    stop = threading.Event()
    turn = fake_session.start_turn("count")
    seen = []
    for chunk in turn.stream(stop):
        seen.append(chunk.text)
        if len(seen) == 2:
            stop.set()
    reply = store.get_message(turn.message_id)  # type: ignore[arg-type]
    assert reply.content == "one two"
    assert not reply.complete and reply.finish_reason == "cancelled"


def test_closing_the_stream_early_also_keeps_the_partial_reply(fake_session: Session, store: Store, fake_backend) -> None:  # type: ignore[no-untyped-def]
    fake_backend.replies = ["alpha beta gamma"]
    turn = fake_session.start_turn("go")
    stream = turn.stream()
    next(stream)
    stream.close()  # what a crash-free Ctrl-C or a closed pipe does
    reply = store.get_message(turn.message_id)  # type: ignore[arg-type]
    assert reply.content == "alpha" and reply.finish_reason == "cancelled" and not reply.complete


def test_a_model_failure_mid_reply_keeps_the_partial_reply(fake_session: Session, store: Store, fake_backend) -> None:  # type: ignore[no-untyped-def]
    fake_backend.replies = ["a b c d"]
    fake_backend.fail_after = 2
    turn = fake_session.start_turn("go")
    with pytest.raises(ModelError, match="partial reply was kept"):
        run(turn)
    reply = store.get_message(turn.message_id)  # type: ignore[arg-type]
    assert reply.content == "a b" and reply.finish_reason == "error" and "fake model broke" in (reply.error or "")


@pytest.mark.parametrize("text", ["", "   \n\t", "bin\x00ary"])
def test_unusable_messages_are_refused_before_anything_is_stored(fake_session: Session, store: Store, text: str) -> None:
    with pytest.raises(InputError):
        fake_session.start_turn(text)
    assert store.list_conversations() == []


# -- the real bundled model ------------------------------------------------------------------------------------


@pytest.mark.model
def test_real_model_turn_is_streamed_timed_and_stored(real_session: Session, store: Store) -> None:
    turn = real_session.start_turn("What is the capital of France? Answer in one short sentence.")
    chunks = list(turn.stream())
    result = turn.result
    assert result is not None
    assert "Paris" in result.reply
    assert "".join(c.text for c in chunks) == result.reply
    assert result.completion_tokens == sum(c.tokens for c in chunks) > 0
    assert result.ttft_ms and result.ttft_ms > 0
    assert result.finish_reason in ("stop", "length")
    stored = store.get_message(result.message_id)
    assert stored.content == result.reply and stored.complete
    assert "<|im_end|>" not in result.reply


@pytest.mark.model
def test_real_model_sees_the_conversation_so_far(real_session: Session) -> None:
    first = real_session.start_turn("My favourite colour is green. Just say OK.")
    list(first.stream())
    second = real_session.start_turn("What is my favourite colour?", first.conversation_id)
    list(second.stream())
    # A 135M model rarely recalls across turns; what the session owes it is the whole exchange in the prompt,
    # rendered with the model's own template.
    assert second.result is not None and second.result.reply
    assert first.result is not None
    prompt = second.plan.prompt
    assert prompt.index("favourite colour is green") < prompt.index(first.result.reply) < prompt.index("What is my")
    assert prompt.count("<|im_start|>user") == 2 and prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.model
def test_real_model_takes_a_huge_paste_without_crashing(real_session: Session, store: Store) -> None:
    text = "Summarise this. " + ("The quick brown fox jumps over the lazy dog. " * 4500)
    assert len(text) > 200_000
    turn = real_session.start_turn(text)
    list(turn.stream())
    assert turn.notice and "only its start and end were sent" in turn.notice
    assert turn.plan.prompt_tokens <= real_session.load().n_ctx
    stored = store.get_message(turn.user_message_id)
    assert stored.content == text and stored.context_trimmed
