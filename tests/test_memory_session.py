"""Memory in the chat turn: recall of earlier conversations, remembered facts, `/remember`, the budget, failures.

The orchestration tests use the fake model and a small fake Memory (queued hits, switchable failures); the end-to-end
tests at the bottom use the real Memory, the real embedder and a real chromadb directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.errors import InputError
from assistant.memory_prompt import RECALL_HEADER, build_memory_block, day_of, parse_remember
from assistant.session import Session
from storage.db import Store
from storage.facts import add_fact, list_facts, recalls_for
from tests.fakes import FakeBackend
from tests.test_memory_cli import onnx_cache  # noqa: F401, F811  (a fixture)


def run(turn: Any) -> str:
    return "".join(chunk.text for chunk in turn.stream())


@dataclass(slots=True)
class Hit:
    """Shaped like storage.memory.Recall."""

    message_id: int
    conversation_id: int
    role: str
    text: str
    score: float
    created_at: str

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


@dataclass
class FakeMemory:
    """Returns stored hits (minus the excluded conversation); can fail by mode."""

    hits: list[Hit] = field(default_factory=list)
    fail_modes: set[str] = field(default_factory=set)
    searches: list[dict[str, Any]] = field(default_factory=list)
    notified: int = 0
    indexed: int = 0
    started: bool = False
    stopped: bool = False
    closed: bool = False

    def search(self, query: str, k: int = 5, *, exclude_conversation: int | None = None, mode: str = "hybrid") -> list:
        self.searches.append({"query": query, "k": k, "exclude": exclude_conversation, "mode": mode})
        if mode in self.fail_modes:
            raise RuntimeError(f"{mode} search broke")
        found = [h for h in self.hits if h.conversation_id != exclude_conversation]
        return sorted(found, key=lambda h: h.score, reverse=True)[:k]

    def index_pending(self, on_progress: Any = None) -> int:
        self.indexed += 1
        return 0

    def start_indexer(self) -> None:
        self.started = True

    def pause_indexing(self) -> None:
        pass

    def resume_indexing(self) -> None:
        pass

    def notify(self) -> None:
        self.notified += 1

    def stop_indexer(self, wait: bool = True) -> None:
        self.stopped = True

    def close(self) -> None:
        self.closed = True


def earlier(store: Store, text: str, role: str = "user", when: str = "2026-11-02T10:00:00.000+00:00") -> Hit:
    """A real earlier conversation holding ``text``, and the hit a memory search would return for it."""
    conversation_id = store.create_conversation(title="earlier")
    message_id = store.add_message(conversation_id, role, text, created_at=when)
    return Hit(message_id, conversation_id, role, text, 0.8, when)


@pytest.fixture
def memory() -> FakeMemory:
    return FakeMemory()


@pytest.fixture
def session(store: Store, settings: Settings, home: Path, fake_backend: FakeBackend, memory: FakeMemory) -> Session:
    s = Session(store, settings, home=home, loader=lambda spec, st: fake_backend, memory=memory)  # type: ignore[arg-type]
    yield s  # type: ignore[misc]
    s.close()


# -- recall --------------------------------------------------------------------------------------------------


def test_an_earlier_conversation_is_recalled_in_a_note_before_the_message_with_its_date(
    session: Session, store: Store, memory: FakeMemory, fake_backend: FakeBackend
) -> None:
    hit = earlier(store, "My cat is called Miso.")
    memory.hits = [hit]
    turn = session.start_turn("What is my cat called?")
    system, asked = turn.plan.messages[0], turn.plan.messages[-1]
    assert system["role"] == "system" and "Miso" not in system["content"]  # the system prompt stays the same
    assert asked["role"] == "user"
    note, question = asked["content"].split("\n\n")
    assert note.startswith(RECALL_HEADER)
    assert f"[{day_of(hit.created_at)}] You said: My cat is called Miso." in note
    assert question == "What is my cat called?"
    assert turn.memories == [hit]
    run(turn)
    assert fake_backend.prompts[0] == turn.plan.prompt
    # The reply records what it was given, and the result carries it.
    assert turn.result is not None
    assert turn.result.memories == [
        {"message_id": hit.message_id, "conversation_id": hit.conversation_id, "text": hit.text, "score": 0.8}
    ]
    (record,) = recalls_for(store, turn.result.message_id)
    assert record.memory_message_id == hit.message_id and record.score == pytest.approx(0.8)


def test_the_current_conversation_is_excluded_from_recall(session: Session, store: Store, memory: FakeMemory) -> None:
    first = session.start_turn("The password hint is blue.")
    run(first)
    memory.hits = [Hit(first.user_message_id, first.conversation_id, "user", "The password hint is blue.", 0.9, "x")]
    second = session.start_turn("What was the hint?", first.conversation_id)
    assert memory.searches[-1]["exclude"] == first.conversation_id
    assert second.memories == [] and "Facts" not in second.plan.messages[0]["content"]
    assert "From earlier conversations" not in second.plan.prompt


def test_low_scoring_hits_are_left_out(session: Session, store: Store, memory: FakeMemory) -> None:
    good, poor = earlier(store, "I live in Lyon."), earlier(store, "Bananas are yellow.")
    poor.score = 0.05
    memory.hits = [good, poor]
    turn = session.start_turn("Where do I live?")
    assert "I live in Lyon." in turn.plan.prompt and "Bananas" not in turn.plan.prompt
    assert turn.memories == [good]


def test_many_long_memories_stay_within_the_budget(
    session: Session, store: Store, memory: FakeMemory, fake_backend: FakeBackend
) -> None:
    for i in range(20):
        add_fact(store, f"fact number {i} " + "blah " * 40)
    memory.hits = [earlier(store, f"memory {i} " + "word " * 400) for i in range(10)]
    turn = session.start_turn("Tell me everything.")
    budget = session.settings.memory_budget(fake_backend.n_ctx)
    assert budget == fake_backend.n_ctx // 5  # 512-token window: the fifth wins over the 400-token setting
    memory_text = turn.plan.messages[0]["content"].split("\n\n", 1)[1] + "\n" + turn.plan.note
    assert 0 < fake_backend.count_tokens(memory_text) <= budget
    assert turn.facts and turn.memories  # both kinds got some room
    assert len(turn.facts) < 20
    # Long snippets are clipped, not dropped, and the prompt still fits the window.
    assert "…" in turn.plan.note
    assert turn.plan.prompt_tokens <= fake_backend.n_ctx


def test_the_budget_setting_is_respected(store: Store, settings: Settings) -> None:
    counter = FakeBackend()
    hits = [Hit(i, 1, "assistant", "word " * 100, 0.9 - i / 100, "2026-11-02T10:00:00+00:00") for i in range(5)]
    block = build_memory_block(counter, [], hits, budget=60)
    assert counter.count_tokens(block.text) <= 60 and block.recalls
    assert "I said:" in block.text
    assert build_memory_block(counter, [], hits, budget=0).text == ""


# -- facts -----------------------------------------------------------------------------------------------------


def test_facts_go_into_the_system_prompt_newest_first(session: Session, store: Store) -> None:
    add_fact(store, "I am vegetarian.")
    add_fact(store, "My sister is called Ana.")
    turn = session.start_turn("What should I cook?")
    system = turn.plan.messages[0]["content"]
    assert system.index("My sister is called Ana.") < system.index("I am vegetarian.")
    assert [f.text for f in turn.facts] == ["My sister is called Ana.", "I am vegetarian."]
    run(turn)
    assert turn.result is not None and [f["text"] for f in turn.result.facts] == [f.text for f in turn.facts]
    assert {r.fact_id for r in recalls_for(store, turn.result.message_id)} == {f.id for f in turn.facts}


def test_slash_remember_stores_a_fact_and_answers_without_the_model(
    session: Session, store: Store, fake_backend: FakeBackend
) -> None:
    turn = session.start_turn("/remember My dentist is Dr. Okafor")
    reply = run(turn)
    (fact,) = list_facts(store)
    assert fact.text == "My dentist is Dr. Okafor" and fact.source_message_id == turn.user_message_id
    assert "My dentist is Dr. Okafor" in reply and f"fact {fact.id}" in reply
    assert fake_backend.prompts == [] and not session.loaded  # the model was never needed
    stored = store.messages(turn.conversation_id)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "/remember My dentist is Dr. Okafor"),
        ("assistant", reply),
    ]
    assert stored[1].finish_reason == "stop" and stored[1].model == "assistant" and stored[1].complete
    # The next turn has it in its system prompt.
    nxt = session.start_turn("Who is my dentist?", turn.conversation_id)
    assert "- My dentist is Dr. Okafor" in nxt.plan.messages[0]["content"]


def test_remember_that_stores_the_fact_and_the_model_replies_knowing_it(
    session: Session, store: Store, fake_backend: FakeBackend
) -> None:
    turn = session.start_turn("Remember that I am allergic to peanuts. Any snack ideas?")
    (fact,) = list_facts(store)
    assert fact.text == "I am allergic to peanuts." and fact.source_message_id == turn.user_message_id
    assert "- I am allergic to peanuts." in turn.plan.messages[0]["content"]
    assert run(turn) == "Hello from the fake model." and fake_backend.prompts


def test_an_empty_slash_remember_is_refused_before_anything_is_stored(session: Session, store: Store) -> None:
    with pytest.raises(InputError, match="Nothing to remember"):
        session.start_turn("/remember   ")
    assert store.list_conversations() == [] and list_facts(store) == []


def test_remember_parsing() -> None:
    assert parse_remember("REMEMBER THAT x is y") == parse_remember("remember that x is y")
    assert parse_remember("please remember that I like tea").fact == "I like tea"  # type: ignore[union-attr]
    assert parse_remember("/remember tea").command is True  # type: ignore[union-attr]
    assert parse_remember("Do you remember that film?") is None
    assert parse_remember("remember when we met?") is None
    assert parse_remember("/remembering") is None


# -- memory off ------------------------------------------------------------------------------------------------


def test_memory_off_sends_neither_recall_nor_facts(
    store: Store, settings: Settings, home: Path, fake_backend: FakeBackend, memory: FakeMemory
) -> None:
    add_fact(store, "I am vegetarian.")
    memory.hits = [earlier(store, "My cat is called Miso.")]
    session = Session(store, settings, home=home, loader=lambda s, st: fake_backend, memory=memory, use_memory=False)  # type: ignore[arg-type]
    turn = session.start_turn("Hello")
    assert "vegetarian" not in turn.plan.prompt and "Miso" not in turn.plan.prompt
    assert memory.searches == [] and turn.memories == [] and turn.facts == []
    session.use_memory = True  # the TUI's toggle
    turn = session.start_turn("What is my cat called?", turn.conversation_id)
    assert "vegetarian" in turn.plan.prompt and "Miso" in turn.plan.prompt
    session.close()


def test_the_memory_setting_turns_it_off(store: Store, home: Path, fake_backend: FakeBackend) -> None:
    built: list[object] = []
    settings = Settings(memory=False)
    session = Session(
        store, settings, home=home, loader=lambda s, st: fake_backend, memory_factory=lambda *a: built.append(a)
    )  # type: ignore[arg-type,return-value]
    run(session.start_turn("Hello"))
    assert not session.use_memory and session.memory is None and built == []


# -- failures never cost a message --------------------------------------------------------------------------


def test_a_broken_vector_search_falls_back_to_word_matches(session: Session, store: Store, memory: FakeMemory) -> None:
    memory.hits = [earlier(store, "My cat is called Miso.")]
    memory.fail_modes = {"hybrid"}
    turn = session.start_turn("cat name?")
    assert [s["mode"] for s in memory.searches] == ["hybrid", "lexical"]
    assert "Miso" in turn.plan.prompt
    assert turn.notice and "only word matches" in turn.notice and "hybrid search broke" in turn.notice
    run(turn)
    assert turn.result is not None and turn.result.finish_reason == "stop"


def test_a_dead_memory_still_lets_the_chat_go_on(session: Session, store: Store, memory: FakeMemory) -> None:
    add_fact(store, "I am vegetarian.")
    memory.hits = [earlier(store, "My cat is called Miso.")]
    memory.fail_modes = {"hybrid", "lexical"}
    turn = session.start_turn("cat name?")
    assert turn.notice and "Memory is unavailable" in turn.notice and turn.notice.count(".") >= 1
    assert "Miso" not in turn.plan.prompt and "vegetarian" in turn.plan.prompt  # facts live in SQLite
    assert run(turn) == "Hello from the fake model."
    assert [m.content for m in store.messages(turn.conversation_id)] == ["cat name?", "Hello from the fake model."]


def test_a_memory_that_cannot_start_is_reported_once(
    store: Store, settings: Settings, home: Path, fake_backend: FakeBackend
) -> None:
    def broken(*args: object) -> Any:
        raise OSError("the index directory is unreadable")

    session = Session(store, settings, home=home, loader=lambda s, st: fake_backend, memory_factory=broken)
    first = session.start_turn("hi")
    assert first.notice and "the index directory is unreadable" in first.notice
    run(first)
    second = session.start_turn("hi again", first.conversation_id)
    assert second.notice is None and second.memories == []
    run(second)
    assert len(store.messages(first.conversation_id)) == 4
    session.close()


# -- indexing ----------------------------------------------------------------------------------------------------


def test_stored_messages_are_handed_to_the_background_indexer(session: Session, memory: FakeMemory) -> None:
    session.wait_for_memory()
    assert memory.started
    before = memory.notified
    run(session.start_turn("hello"))
    assert memory.notified >= before + 2  # the user's message, then the reply
    session.close()
    assert memory.stopped and memory.closed


def test_index_now_indexes_without_a_background_thread(
    store: Store, settings: Settings, home: Path, fake_backend: FakeBackend, memory: FakeMemory
) -> None:
    session = Session(
        store,
        settings,
        home=home,
        loader=lambda s, st: fake_backend,
        memory=memory,
        background_index=False,  # type: ignore[arg-type]
    )
    run(session.start_turn("hello"))
    session.index_now()
    assert memory.indexed == 1 and not memory.started and memory.notified == 0
    session.close()


def test_a_one_shot_general_question_does_not_wait_for_a_memory_that_could_give_nothing(
    store: Store, settings: Settings, home: Path, fake_backend: FakeBackend, memory: FakeMemory
) -> None:
    """The one-shot CLI's memory warm-up (chromadb, the embedder, the catch-up) may still run when the prompt is
    planned: a question not about the user, whose words no stored message holds, cannot be given anything, so the
    turn goes on without it. A question some message could answer waits for the search."""
    import threading

    earlier(store, "I spent the weekend by the sea with my sister.")
    release, gave_up = threading.Event(), threading.Event()

    def slow_memory(*args: object) -> FakeMemory:
        if not release.wait(120):  # the test failed: the turn waited for the memory
            gave_up.set()
        return memory

    session = Session(
        store, settings, home=home, loader=lambda s, st: fake_backend, memory_factory=slow_memory,  # type: ignore[arg-type]
        background_index=False,
    )
    turn = session.start_turn("What is the capital of France?")
    assert not gave_up.is_set() and not release.is_set()  # planned while the memory was still starting
    assert turn.memories == [] and memory.searches == []
    release.set()
    run(turn)
    session.close()
    assert not gave_up.is_set()


def test_nothing_to_give_is_certain_only_when_no_message_holds_every_word(store: Store) -> None:
    from storage.memory import nothing_to_give

    here = store.create_conversation(title="now")
    store.add_message(here, "user", "What is the capital of France?")
    assert nothing_to_give(store, "What is the capital of France?", exclude_conversation=here)
    assert not nothing_to_give(store, "What is the capital of France?")  # the message itself holds them all
    other = store.create_conversation(title="before")
    store.add_message(other, "assistant", "The capitals of European countries: France has Paris.")
    assert not nothing_to_give(store, "What is the capital of France?", exclude_conversation=here)  # capitals ~ capital
    assert not nothing_to_give(store, "What is my cat called?", exclude_conversation=here)  # personal: search decides
    assert nothing_to_give(store, "Hello there!", exclude_conversation=here)  # no content words: nothing can match
    assert not nothing_to_give(store, "Où est la gare de Zürich ?", exclude_conversation=here)  # non-ASCII: undecided


# -- end to end: the real Memory, embedder and chromadb directory ----------------------------------------------


def test_real_memory_recalls_an_earlier_conversation_with_its_date_and_not_the_current_one(
    store: Store, settings: Settings, home: Path, fake_backend: FakeBackend, onnx_cache: Path  # noqa: F811
) -> None:
    import shutil

    (home / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy(onnx_cache, home / "models" / onnx_cache.name)
    old = store.create_conversation()
    store.add_message(
        old, "user", "My cat is called Miso and she loves sardines.", created_at="2026-11-02T10:00:00.000+00:00"
    )
    session = Session(store, settings, home=home, loader=lambda s, st: fake_backend, background_index=False)
    try:
        session.index_now()  # the earlier message (the memory's warm-up may have indexed it already)
        current = session.start_turn("The weather in Oslo is grey today.")
        run(current)
        session.index_now()
        turn = session.start_turn("What does my cat love to eat?", current.conversation_id)
        assert f"[{day_of('2026-11-02T10:00:00.000+00:00')}] You said: My cat is called Miso" in turn.plan.prompt
        assert [m.conversation_id for m in turn.memories] == [old]  # the current conversation is not recalled
        assert "Oslo" in turn.plan.prompt  # ...it is in the prompt as history, once
        assert turn.plan.prompt.count("Oslo") == 1
    finally:
        session.close()


def test_the_indexer_waits_while_a_reply_streams(store, settings, home, embedder) -> None:  # type: ignore[no-untyped-def]
    """Embedding beside generation would take the model's cores: indexing is paused for the length of a reply."""
    from assistant.session import Session
    from storage.memory import Memory
    from tests.fakes import FakeBackend

    memory = Memory(store, home, embedder=embedder)
    backend = FakeBackend(["one two three"])
    session = Session(store, settings, home=home, loader=lambda spec, s: backend, memory=memory, use_memory=True)
    turn = session.start_turn("hello")
    seen = []
    for _ in turn.stream():
        seen.append(memory.indexing_paused)
    assert seen and all(seen)
    assert not memory.indexing_paused
    session.close()
