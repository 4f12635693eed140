"""A prompt that keeps its cache: each turn's prompt starts with the last turn's prompt and its reply.

llama.cpp reuses the longest common token prefix of what it has already read; a prompt whose start changes (recall
in the system prompt, say) is read whole again on every turn. So with memory on and recall changing from turn to
turn, the rendered prompt of turn N+1 must extend that of turn N plus its reply, on the fake model for the
orchestration and on the real model with its own chat template (and its tokens) end to end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.context import plan_prompt
from assistant.memory_prompt import RECALL_HEADER
from assistant.runtime.base import Backend
from assistant.session import Session
from bench.multi_turn import common_prefix
from storage.db import Store
from storage.facts import add_fact
from tests.fakes import FakeBackend
from tests.test_memory_session import FakeMemory, Hit, earlier


def run(turn) -> str:  # type: ignore[no-untyped-def]
    return "".join(chunk.text for chunk in turn.stream())


@pytest.fixture
def memory() -> FakeMemory:
    return FakeMemory()


@pytest.fixture
def fake_memory_session(
    store: Store, settings: Settings, home: Path, memory: FakeMemory
) -> Iterator[tuple[Session, FakeBackend]]:
    backend = FakeBackend(n_ctx=4096)
    session = Session(store, settings, home=home, loader=lambda *a, **k: backend, memory=memory)  # type: ignore[arg-type]
    yield session, backend
    session.close()


def recall_plan(store: Store) -> list[list[Hit]]:
    """What memory finds at each of four turns: new snippets, one found again, none, two new."""
    cat, dog, lyon, bread = (
        earlier(store, "My cat is called Miso."),
        earlier(store, "Ingrid's beagle is called Pepper.", role="assistant"),
        earlier(store, "We moved to Lyon in May."),
        earlier(store, "I bake sourdough bread on Sundays."),
    )
    return [[cat, dog], [cat, lyon], [], [bread, dog]]


def test_each_prompt_extends_the_last_one_and_its_reply_with_recall_changing(
    fake_memory_session: tuple[Session, FakeBackend], store: Store, memory: FakeMemory
) -> None:
    session, backend = fake_memory_session
    add_fact(store, "I am vegetarian.")
    backend.replies = ["First answer.", "Second answer.", "Third answer.", "Fourth answer."]
    plan = recall_plan(store)
    conversation_id = None
    prompts, replies, turns = [], [], []
    for number, hits in enumerate(plan):
        memory.hits = hits
        turn = session.start_turn(f"What did I tell you, part {number}?", conversation_id)
        replies.append(run(turn))
        prompts.append(turn.plan.prompt)
        turns.append(turn)
        conversation_id = turn.conversation_id
    assert backend.prompts == prompts
    for before, reply, after in zip(prompts, replies, prompts[1:], strict=False):
        assert after.startswith(before + reply)
    # A snippet already given stays where it was given, once; only new ones come with the new message.
    assert [h.text for h in turns[1].memories] == ["We moved to Lyon in May."]
    assert prompts[-1].count("My cat is called Miso.") == 1 and prompts[-1].count("Pepper") == 1
    assert [h.text for h in turns[3].memories] == ["I bake sourdough bread on Sundays."]
    assert turns[2].plan.note == "" and turns[2].memories == []
    # Facts stay in the system prompt, the same on every turn; the notes go before the messages.
    systems = {t.plan.messages[0]["content"] for t in turns}
    assert len(systems) == 1 and "I am vegetarian." in systems.pop()
    assert turns[0].plan.messages[-1]["content"].startswith(RECALL_HEADER)


def test_the_notes_of_earlier_turns_come_from_the_record_of_what_each_reply_was_given(
    fake_memory_session: tuple[Session, FakeBackend], store: Store, memory: FakeMemory, settings: Settings, home: Path
) -> None:
    session, backend = fake_memory_session
    memory.hits = recall_plan(store)[0]
    first = session.start_turn("What are my pets called?")
    run(first)
    # A new session (a new process) rebuilds the same prompt from SQLite, though memory now finds nothing.
    memory.hits = []
    again = Session(store, settings, home=home, loader=lambda *a, **k: backend, memory=memory)  # type: ignore[arg-type]
    second = again.start_turn("Thanks, I will feed them.", first.conversation_id)
    assert second.plan.prompt.startswith(first.plan.prompt + first.result.reply)  # type: ignore[union-attr]
    # With memory off, neither facts nor notes are sent.
    again.use_memory = False
    off = again.start_turn("And now?", first.conversation_id)
    assert RECALL_HEADER not in off.plan.prompt and "Miso" not in off.plan.prompt


def test_history_that_outgrows_the_window_is_left_out_in_steps() -> None:
    """Dropping one old message per turn would change the prompt's start every turn; steps keep it for several."""
    backend = FakeBackend(n_ctx=1024)  # about 16 turns fit
    history: list[dict[str, str]] = []
    breaks = turns = 0
    last: str | None = None
    for n in range(80):
        text = f"question {n} " + "x" * 60
        plan = plan_prompt(backend, "sys", history, text, max_tokens=128)
        reply = f"answer {n} " + "y" * 60
        if last is not None and plan.history_dropped:
            turns += 1
            breaks += not plan.prompt.startswith(last)
        last = plan.prompt + reply
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]
        assert plan.prompt_tokens <= 1024 - 128
    assert turns > 50
    assert breaks <= turns // 3  # one message per turn would break it on every turn


def test_real_model_prompts_and_tokens_extend_the_last_turn(
    store: Store, settings: Settings, home: Path, real_backend: Backend, memory: FakeMemory
) -> None:
    """The real chat template and tokenizer: llama.cpp's cache covers the whole previous prompt on the next turn."""
    session = Session(store, settings, home=home, loader=lambda *a, **k: real_backend, memory=memory)
    llm = real_backend.llm  # type: ignore[attr-defined]
    try:
        conversation_id = None
        previous: tuple[str, str] | None = None
        texts = ["Hi, I am back!", "What is my cat called?", "Thanks, I see.", "What do I bake?"]
        for hits, text in zip(recall_plan(store), texts, strict=True):
            memory.hits = hits
            turn = session.start_turn(text, conversation_id)
            conversation_id = turn.conversation_id
            tokens = list(real_backend.tokenize_prompt(turn.plan.prompt))  # type: ignore[attr-defined]
            if previous is not None:
                prompt, reply = previous
                assert turn.plan.prompt.startswith(prompt + reply)
                cached = list(llm.input_ids[: llm.n_tokens])
                earlier_tokens = real_backend.tokenize_prompt(prompt)  # type: ignore[attr-defined]
                assert common_prefix(cached, tokens) >= len(earlier_tokens)  # only the new turn is read
            reply = run(turn)
            assert turn.result is not None and turn.result.saved
            previous = (turn.plan.prompt, reply)
    finally:
        session.close()
