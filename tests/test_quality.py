"""Reply quality: memory must not make answers worse, loops are cut with a note, a base model is labelled.

End to end where it matters: the real bundled model, the real embedder, a real chromadb directory, the real CLI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.loops import NOTICE
from assistant.runtime.base import Backend, Chunk, GenerationParams
from assistant.session import Session
from bench.quality import english, right
from storage.db import Store
from storage.embedder import Embedder
from storage.facts import add_fact
from storage.memory import Memory
from storage.retrieval import covers, worth_giving
from tests.fakes import FakeBackend
from tests.test_cli_chat import run_cli

JAPAN = "What is the capital of Japan?"


def test_a_general_question_gets_only_messages_about_exactly_it() -> None:
    japan = "What is the capital of Japan?"
    assert not worth_giving(japan, "What is the capital of France?", 1.1, 0.5)  # issue 6: France leaked in
    assert not worth_giving(japan, "Bonjour! Je m'appelle Alba et j'habite à Paris.", 0.9, 0.5)
    assert worth_giving(japan, "We loved Tokyo, the capital of Japan, last spring.", 0.9, 0.5)
    assert not worth_giving(japan, "We loved Tokyo, the capital of Japan, last spring.", 0.4, 0.5)  # the floor
    assert not worth_giving(japan, "what is the  capital of Japan?", 1.5, 0.5)  # the same question again
    # A question about the user keeps what scores above the floor, as before.
    assert worth_giving("What is my wifi called?", "My wifi is called PastelNet.", 0.6, 0.5)
    assert worth_giving("What is my wifi called?", "I set the router up in the hallway.", 0.6, 0.5)
    assert covers("When is Noor's birthday?", "Noor's birthday is on the 12th of May.")
    assert not covers("Which planets have rings?", "")


def test_the_bench_scores() -> None:
    assert english("The capital of France is Paris.")
    assert not english("L'Alma, la France, est la capital de la France.")  # issue 6's answer with memory on
    assert english("42")
    assert right("The capital of France is Paris.", ("paris",))
    assert not right("Parisian cafés are nice.", ("paris",))
    assert right("A spider has 8 legs.", ("eight", "8"))


@pytest.fixture
def memory(store: Store, home: Path, embedder: Embedder) -> Iterator[Memory]:
    mem = Memory(store, home, embedder=embedder)
    yield mem
    mem.close()


def remembered(store: Store, memory: Memory) -> None:
    """A new user's memory: a few earlier chats (one in French, one about France) and remembered facts."""
    chats = [
        [("user", "Bonjour! Je m'appelle Alba et j'habite à Paris."), ("assistant", "Bonjour Alba ! Paris est belle.")],
        [("user", "What is the capital of France?"), ("assistant", "The capital of France is Paris.")],
        [("user", "My wifi is called PastelNet."), ("assistant", "Thanks, I will keep that in mind.")],
        [("user", "Give me a recipe for leek soup."), ("assistant", "Simmer leeks and potatoes in stock, then blend.")],
    ]
    for chat in chats:
        cid = store.create_conversation()
        for role, text in chat:
            store.add_message(cid, role, text)
    add_fact(store, "My sister Noor has a dachshund called Pepperoni.")
    add_fact(store, "I am vegetarian.")
    memory.index_pending()


def ask(session: Session, text: str) -> Any:
    turn = session.start_turn(text)
    for _ in turn.stream():
        pass
    assert turn.result is not None
    return turn.result


def test_memory_does_not_make_a_general_answer_worse(
    store: Store, settings: Settings, home: Path, memory: Memory, real_backend: Backend
) -> None:
    remembered(store, memory)
    session = Session(store, settings, home=home, loader=lambda *a, **k: real_backend, memory=memory)
    # Nothing of an earlier chat about France goes into a question about Italy (it scored 0.67, above the floor).
    assert ask(session, "What is the capital of Italy?").memories == []
    on = ask(session, JAPAN)
    off = ask(Session(store, settings, home=home, loader=lambda *a, **k: real_backend, use_memory=False), JAPAN)
    assert "Tokyo" in off.reply and "France" not in off.reply
    assert on.memories == []
    assert "Tokyo" in on.reply and "France" not in on.reply and english(on.reply)
    # A question about the user is still answered from memory.
    wifi = ask(session, "What is my wifi called?")
    assert any("PastelNet" in m["text"] for m in wifi.memories)
    assert "PastelNet" in wifi.reply
    session.close()


class LoopingBackend(FakeBackend):
    """Ends its reply the way the real backend ends one it cut for looping."""

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Chunk]:
        yield Chunk("konnichiwa noor, " * 12, 24, 0.1)
        yield Chunk("", 0, 0.2, "loop")


def test_a_reply_cut_for_looping_is_kept_complete_with_a_note(store: Store, settings: Settings, home: Path) -> None:
    backend = LoopingBackend()
    session = Session(store, settings, home=home, loader=lambda *a, **k: backend, use_memory=False)
    result = ask(session, "Write a haiku about Noor.")
    assert result.finish_reason == "loop" and result.notice is not None and NOTICE in result.notice
    stored = store.messages(result.conversation_id)[-1]
    assert stored.content.startswith("konnichiwa noor,") and stored.finish_reason == "loop" and stored.complete


def test_models_list_labels_the_base_model() -> None:
    listed = run_cli("models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["gemma3-270m"]["chat"] is False and rows["smollm2"]["chat"] is True
    table = run_cli("models", "list")
    line = next(row for row in table.stdout.splitlines() if "gemma3-270m" in row)
    assert "base (not a chat model)" in line
