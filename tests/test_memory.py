"""Semantic memory end to end: the bundled embedder, a real chromadb directory, a real SQLite store."""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.db import Store
from storage.embedder import Embedder
from storage.memory import Memory
from storage.vectors import SQLITE_FILE


@pytest.fixture
def memory(store: Store, home: Path, embedder: Embedder) -> Iterator[Memory]:
    mem = Memory(store, home, embedder=embedder)
    yield mem
    mem.close()


def conversation(store: Store, *messages: tuple[str, str]) -> tuple[int, list[int]]:
    cid = store.create_conversation()
    return cid, [store.add_message(cid, role, text) for role, text in messages]


def wait_until(condition, timeout: float = 60.0) -> bool:
    # Polls a condition (not a timing assertion): generous, so a slow shared machine cannot fail it.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_recall_across_conversations(store: Store, memory: Memory) -> None:
    _, (fact, _) = conversation(
        store, ("user", "My sister Alba lives in Tromsø and works as a dentist."), ("assistant", "Noted, thank you.")
    )
    conversation(store, ("user", "Give me a recipe for leek and potato soup, please."))
    current, _ = conversation(store, ("user", "Where does my sister live?"))
    assert memory.index_pending() == 4
    assert memory.pending_count() == 0
    for mode in ("hybrid", "vector", "lexical"):
        hits = memory.search("Where does my sister live?", k=3, exclude_conversation=current, mode=mode)
        assert hits and hits[0].message_id == fact, mode
        assert len(hits) <= 3
        assert all(h.conversation_id != current for h in hits)
    top = memory.search("which city is Alba in", k=1)[0]
    assert top.to_dict() == {
        "message_id": fact,
        "conversation_id": top.conversation_id,
        "role": "user",
        "text": "My sister Alba lives in Tromsø and works as a dentist.",
        "score": top.score,
        "created_at": top.created_at,
    }
    assert top.score > 0


def test_exclude_conversation_leaves_out_the_current_one(store: Store, memory: Memory) -> None:
    old, (old_id,) = conversation(store, ("user", "The wifi password at the cabin is bluefjord42."))
    new, (new_id,) = conversation(store, ("user", "What is the wifi password at the cabin? bluefjord42?"))
    memory.index_pending()
    ids = [h.message_id for h in memory.search("cabin wifi password", k=5)]
    assert old_id in ids and new_id in ids
    ids = [h.message_id for h in memory.search("cabin wifi password", k=5, exclude_conversation=new)]
    assert ids == [old_id]
    assert [h.message_id for h in memory.search("cabin wifi password", k=5, exclude_conversation=old)] == [new_id]


def test_k_limits_results_and_chatter_is_skipped(store: Store, memory: Memory) -> None:
    conversation(store, *[("user", f"Note {i}: the garden needs watering on day {i} of the trip.") for i in range(8)])
    _, (ok_id,) = conversation(store, ("user", "ok"))
    memory.index_pending()
    assert memory.pending_count() == 0  # "ok" is settled without a vector, not pending forever
    assert len(memory.search("garden watering", k=3)) == 3
    assert ok_id not in [h.message_id for h in memory.search("ok", k=10, mode="lexical")]


def test_forget_conversation_and_message_at_once(store: Store, memory: Memory) -> None:
    gone, (secret, _) = conversation(
        store, ("user", "My bank PIN hint is the year grandma Zofia was born."), ("assistant", "I will remember it.")
    )
    _, (kept, single) = conversation(
        store, ("user", "Zofia's apple cake needs sour apples."), ("user", "Grandma Zofia grew up in Kraków.")
    )
    memory.index_pending()
    before = memory.index.count()
    memory.forget_conversation(gone)
    assert memory.index.count() == before - 2
    ids = {
        h.message_id for mode in ("hybrid", "vector", "lexical") for h in memory.search("Zofia PIN", k=10, mode=mode)
    }
    assert secret not in ids and kept in ids
    memory.forget_message(single)
    assert memory.index.count() == before - 3
    assert single not in {h.message_id for h in memory.search("Where did grandma Zofia grow up?", k=10)}
    with store.guard() as db:
        assert db.execute("SELECT count(*) FROM vector_tombstones").fetchone()[0] == 0


def test_history_delete_is_purged_through_tombstones(store: Store, memory: Memory) -> None:
    victim, (message,) = conversation(store, ("user", "The spare key is hidden under the blue flowerpot."))
    conversation(store, ("user", "The garage door code changed last week."))
    memory.index_pending()
    before = memory.index.count()
    store.delete_conversation(victim)  # what `assistant history delete` does: it knows nothing of the index
    assert memory.index.count() == before  # the vector lingers...
    for mode in ("hybrid", "vector", "lexical"):  # ...but is never returned
        assert message not in [h.message_id for h in memory.search("where is the spare key", k=5, mode=mode)]
    memory.index_pending()
    assert memory.index.count() == before - 1
    with store.guard() as db:
        assert db.execute("SELECT count(*) FROM vector_tombstones").fetchone()[0] == 0


def test_reindex_after_the_index_directory_is_deleted(store: Store, home: Path, embedder: Embedder) -> None:
    _, (fact,) = conversation(store, ("user", "Our wedding anniversary is on the ninth of June."))
    first = Memory(store, home, embedder=embedder)
    first.index_pending()
    first.close()
    shutil.rmtree(home / "memory")
    second = Memory(store, home, embedder=embedder)
    try:
        assert second.pending_count() == 0  # SQLite still believes it is indexed...
        assert second.search("when is our anniversary", mode="vector") == []  # ...the check finds the index empty
        assert second.pending_count() == 1 and second.notices
        assert second.index_pending() == 1
        assert second.search("when is our anniversary", mode="vector")[0].message_id == fact
        # Deleted while open: detected on the next use, not fatal.
        shutil.rmtree(home / "memory")
        assert second.search("when is our anniversary", mode="vector") == []
        assert second.index_pending() == 1
        assert second.search("when is our anniversary", mode="vector")[0].message_id == fact
        assert second.reindex() == 1
        assert second.index.count() == 1
    finally:
        second.close()


def test_corrupt_index_is_rebuilt(store: Store, home: Path, embedder: Embedder) -> None:
    _, (fact,) = conversation(store, ("user", "The boiler service is booked with Heatwise for Friday."))
    first = Memory(store, home, embedder=embedder)
    first.index_pending()
    first.close()
    (home / "memory" / SQLITE_FILE).write_bytes(b"this is not a database " * 512)
    second = Memory(store, home, embedder=embedder)
    try:
        hits = second.search("who services the boiler", k=3)  # lexical recall still works; never fatal
        assert [h.message_id for h in hits] == [fact]
        assert len(second.notices) == 1
        assert second.pending_count() == 1
        assert second.index_pending() == 1
        assert second.search("who services the boiler", mode="vector")[0].message_id == fact
    finally:
        second.close()


def test_concurrent_writes_and_deletes_during_searches(store: Store, memory: Memory) -> None:
    cid, _ = conversation(store, *[("user", f"Reminder {i}: water the tomato plants in bed {i}.") for i in range(20)])
    memory.index_pending()
    deleted: set[str] = set()  # texts, not ids: SQLite reuses the highest deleted id
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for i in range(40):
                text = f"Reminder {100 + i}: water the tomato plants in bed {i}."
                added = store.add_message(cid, "user", text)
                if i % 2:
                    store.delete_message(added)
                    deleted.add(text)
                if i % 10 == 9:
                    memory.index_pending()
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    searches = 0
    while not done.is_set() or searches < 5:
        gone_before = set(deleted)
        for mode in ("hybrid", "vector", "lexical"):
            hits = memory.search("water the tomato plants", k=10, mode=mode)
            assert not gone_before.intersection(h.text for h in hits)
        searches += 1
    thread.join()
    assert not errors
    memory.index_pending()
    with store.guard() as db:
        assert db.execute("SELECT count(*) FROM vector_tombstones").fetchone()[0] == 0
    assert memory.index.count() == 20 + 20  # every surviving message, nothing deleted


def test_background_indexer_indexes_notified_messages(store: Store, memory: Memory) -> None:
    memory.start_indexer()
    try:
        _, (fact,) = conversation(store, ("user", "I parked the car on level 3, spot C14."))
        memory.notify()
        assert wait_until(lambda: memory.pending_count() == 0)
        assert memory.search("where did I park", mode="vector", k=1)[0].message_id == fact
        assert memory.indexer_running
    finally:
        memory.stop_indexer()
    assert not memory.indexer_running


class CountingEmbedder(Embedder):
    """The real embedder, counting the texts it embeds."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.embedded = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return self.inner.embed(texts)


def test_paused_indexer_waits_until_every_pause_is_resumed(store: Store, home: Path, embedder: Embedder) -> None:
    counting = CountingEmbedder(embedder)
    memory = Memory(store, home, embedder=counting)
    try:
        memory.start_indexer()
        with memory.paused():
            memory.pause_indexing()  # nested: a second pauser (another reply) holds it too
            assert memory.indexing_paused
            conversation(store, ("user", "The spare bike key is in the blue drawer."))
            memory.notify()
            memory.indexer.held.wait()  # the indexer reached the pause (a condition, not a time)...
            assert counting.embedded == 0 and memory.pending_count() == 1  # ...and embedded nothing
            # Search still works while the indexer waits (words only: nothing is embedded yet).
            assert memory.search("where is the spare bike key", mode="lexical")
            memory.resume_indexing()
            assert memory.indexing_paused and memory.indexer.held.is_set() and memory.pending_count() == 1
        assert not memory.indexing_paused
        assert wait_until(lambda: memory.pending_count() == 0)
        memory.resume_indexing()  # one too many: ignored, not a negative count
        assert not memory.indexing_paused
        memory.pause_indexing()
        memory.stop_indexer()  # a paused indexer still stops: stop() wakes it (without that, this join never returns)
        assert not memory.indexer_running
    finally:
        memory.close()


def test_newest_statement_wins_when_a_fact_changed(store: Store, memory: Memory) -> None:
    _, (old, _) = conversation(
        store, ("user", "My gym locker code is 4471, the one by the window."), ("assistant", "Got it.")
    )
    conversation(store, ("user", "Visiting my sister this weekend."), ("user", "Can you suggest a soup recipe?"))
    _, (new, _) = conversation(
        store, ("user", "They reshuffled the gym lockers, my locker code is 9024 now."), ("assistant", "Noted.")
    )
    memory.index_pending()
    hits = memory.search("What is my gym locker code these days?", k=3)
    assert [h.message_id for h in hits[:2]] == [new, old]


class BrokenEmbedder(Embedder):
    """Fails every call, as a missing model file would."""

    def embed(self, texts: list[str]) -> list[list[float]]:
        raise RuntimeError("model file missing")


def test_indexer_errors_are_caught_and_nothing_is_lost(store: Store, home: Path) -> None:
    memory = Memory(store, home, embedder=BrokenEmbedder())
    memory.start_indexer()
    try:
        conversation(store, ("user", "Buy oat milk, rye bread and coffee beans."))
        memory.notify()
        assert wait_until(lambda: memory.last_error is not None)
        assert "model file missing" in (memory.last_error or "")
        assert memory.indexer_running
        assert memory.pending_count() == 1
        assert [h.text for h in memory.search("oat milk", mode="lexical")] == [
            "Buy oat milk, rye bread and coffee beans."
        ]
    finally:
        memory.close()


def test_streaming_reply_waits_until_finished(store: Store, memory: Memory) -> None:
    cid = store.create_conversation()
    reply = store.add_message(cid, "assistant", "The capital of Mongolia is", complete=0)
    assert memory.index_pending() == 0 and memory.pending_count() == 0
    store.update_message(reply, content="The capital of Mongolia is Ulaanbaatar.", complete=1, finish_reason="stop")
    assert memory.index_pending() == 1


def test_long_messages_are_chunked(store: Store, memory: Memory) -> None:
    filler = " ".join(f"Paragraph {i} discusses the quarterly budget spreadsheet in detail." for i in range(60))
    _, (long_id,) = conversation(store, ("user", filler + " Finally, my passport expires in August 2027."))
    conversation(store, ("user", "The quarterly budget spreadsheet is due on Monday."))
    memory.index_pending()
    assert memory.index.count() > 3  # one message, several vectors
    hits = memory.search("when does my passport expire", mode="vector", k=2)
    assert hits[0].message_id == long_id  # the tail past the 256-token window is still found by meaning


@pytest.mark.slow
def test_onnx_engine_matches_sentence_transformers(embedder: Embedder) -> None:
    assert embedder.engine == "onnx"
    reference = Embedder(threads=1, engine="sentence-transformers")
    texts = ["ok", "My sister Alba lives in Tromsø.", "word " * 600, "Le chat est sur la table."]
    for a, b in zip(embedder.embed(texts), reference.embed(texts), strict=True):
        assert len(a) == len(b) == 384
        assert sum(x * y for x, y in zip(a, b, strict=True)) >= 0.999


# -- a labelled check: hybrid retrieval must not be worse than vector search -------------------------------

NAMES = ["Ingrid", "Tomasz", "Mireille", "Hiroko", "Dmitri", "Aoife", "Kwame", "Lucía", "Pieter", "Saanvi"]
PLACES = ["Bergen", "Gdańsk", "Lyon", "Osaka", "Tbilisi", "Galway", "Kumasi", "Valencia", "Utrecht", "Pune"]
FILLER = [
    "My friend {n} moved to {p} for a new job.",
    "{n} sent photos from the old harbour in {p}.",
    "I might visit {n} in {p} next spring.",
    "{n} recommended a bakery near the station in {p}.",
    "The weather in {p} was awful when {n} was there.",
    "{n} and I talked about work for an hour.",
    "Can you suggest a gift for {n}? Something small.",
    "{n} is learning to play the cello.",
    "I need to call {n} about the weekend plans.",
    "Remind me that {n} prefers tea over coffee.",
    "My doctor said I should sleep more and walk every day.",
    "How long should I boil an egg for a soft yolk?",
    "Let's plan meals for the week: pasta, curry and soup.",
    "I am reading a novel set in {p} in the 1920s.",
]
CHATTER = ["ok", "thanks!", "sure", "yes please", "nice"]
# (message holding the answer, question asked later in other words)
NEEDLES = [
    ("My cousin Mireille just adopted a greyhound called Pistachio.", "What is the name of Mireille's dog?"),
    ("Tomasz's birthday is on 17 October, he loves vinyl records.", "When is Tomasz's birthday?"),
    ("Hiroko works as a marine biologist at the aquarium.", "What does Hiroko do for a living?"),
    ("My locker code at the gym is 4471.", "What is my gym locker code?"),
    ("I'm allergic to penicillin, it gave me a rash as a child.", "Which medicine am I allergic to?"),
    ("Our landlord, Mr Abernathy, raises the rent every January.", "Who is our landlord?"),
    ("The flight to Reykjavik leaves at 06:40 from gate B12.", "What time is my flight to Reykjavik?"),
    ("Dmitri lent me his camping stove and I still have to return it.", "What do I have to give back to Dmitri?"),
    ("My daughter's school play is about a dragon who hates gold.", "What is the school play about?"),
    ("I switched my electricity supplier to Voltaro in May.", "Which electricity company do I use?"),
    ("Aoife is allergic to walnuts, never bake walnut cake for her.", "What food must Aoife avoid?"),
    ("The mechanic said the timing belt must be replaced at 120000 km.", "When does the timing belt need changing?"),
    ("Kwame and I are training for the Berlin half marathon.", "Which race am I preparing for with Kwame?"),
    ("My blood type is O negative.", "What is my blood type?"),
    ("I keep the spare house key with my neighbour Lucía.", "Who has the spare key to the house?"),
    ("Pieter's new phone number is 0612 998 341.", "How can I reach Pieter by phone?"),
    ("I started taking ukulele lessons on Thursday evenings.", "Which instrument am I learning?"),
    ("Saanvi's wedding will be in Jaipur in December.", "Where is Saanvi getting married?"),
    ("My favourite tea is a smoky lapsang souchong.", "Which tea do I like best?"),
    ("Ingrid fixed my bike's rear derailleur last weekend.", "Who repaired my bicycle?"),
    # Codes and numbers: an embedding blurs them, the words match them exactly.
    ("Invoice 20931 from the plumber is still unpaid, 240 euros.", "Is invoice 20931 paid?"),
    ("The printer shows error E4417 when the tray is empty.", "What does printer error E4417 mean?"),
    ("Parcel tracking number 7Q39XK arrives on Tuesday.", "When does parcel 7Q39XK arrive?"),
    ("Room 3112 at the hospital is where dad is staying.", "Who is in room 3112?"),
]


def near_duplicate(text: str, rng: random.Random, digits: bool) -> str:
    """The same sentence about another person or place (with other digits if ``digits``)."""
    out = []
    for index, word in enumerate(text.split(" ")):
        core = word.rstrip(".,?!'s")
        if core in NAMES or (index and core[:1].isupper() and core.isalpha()):
            word = word.replace(core, rng.choice([*NAMES, *PLACES]), 1)
        out.append("".join(rng.choice("0123456789") if digits and ch.isdigit() else ch for ch in word))
    return " ".join(out)


def build_corpus(store: Store, seed: int = 7) -> list[int]:
    """~400 messages over 25 conversations; returns the id of each needle, in NEEDLES order."""
    rng = random.Random(seed)
    lines: list[tuple[str, str]] = []
    for _ in range(200):
        template = rng.choice(FILLER)
        lines.append(("user", template.format(n=rng.choice(NAMES), p=rng.choice(PLACES))))
        if rng.random() < 0.2:
            lines.append(("assistant", rng.choice(CHATTER)))
    # Near-duplicates of each needle about someone or something else: told apart only by a name or a number,
    # which is where embeddings are weak and a real history is full of.
    for needle, question in NEEDLES:
        # Only twins that the question can tell apart: "my locker code" with another number would be as right.
        digits = any(ch.isdigit() for ch in question)
        for _ in range(6):
            twin = near_duplicate(needle, rng, digits)
            if twin != needle:
                lines.insert(rng.randrange(len(lines) + 1), ("user", twin))
    slots = sorted(rng.sample(range(len(lines)), len(NEEDLES)))
    for offset, (slot, (needle, _)) in enumerate(zip(slots, NEEDLES, strict=True)):
        lines.insert(slot + offset, ("user", needle))
    ids: dict[str, int] = {}
    size = len(lines) // 25 + 1
    for start in range(0, len(lines), size):
        cid = store.create_conversation()
        for role, text in lines[start : start + size]:
            ids[text] = store.add_message(cid, role, text)
    return [ids[needle] for needle, _ in NEEDLES]


def test_hybrid_recall_at_5_is_at_least_vector(store: Store, memory: Memory) -> None:
    answers = build_corpus(store)
    assert 300 <= memory.index_pending() <= 450
    recall: dict[str, tuple[float, float]] = {}
    for mode in ("vector", "lexical", "hybrid"):
        ranks = []
        for answer, (_, question) in zip(answers, NEEDLES, strict=True):
            ids = [h.message_id for h in memory.search(question, k=5, mode=mode)]
            ranks.append(ids.index(answer) if answer in ids else 5)
        recall[mode] = (sum(r < 1 for r in ranks) / len(ranks), sum(r < 5 for r in ranks) / len(ranks))
    print(f"\nrecall@1, recall@5 on {len(NEEDLES)} questions: {recall}")
    assert recall["hybrid"][1] >= recall["vector"][1]
    assert recall["hybrid"][1] >= recall["lexical"][1]
    assert recall["hybrid"][0] >= recall["vector"][0]
    assert recall["hybrid"][1] >= 0.85


def test_prepare_makes_the_onnx_export_once_in_the_shared_cache(embedder, shared_cache) -> None:  # type: ignore[no-untyped-def]
    from storage.embedder import ONNX_NAME, prepare

    target = prepare()
    assert target == shared_cache / "models" / ONNX_NAME and target.stat().st_size > 1_000_000
    before = target.stat().st_mtime_ns
    assert prepare() == target and target.stat().st_mtime_ns == before  # made once, then reused


def test_what_the_user_said_outranks_the_assistants_invented_reply(store: Store, memory: Memory) -> None:
    # Issue 6: the model's own guess ("your wifi is Lumia 2033") ranked above the user's statement.
    _, (said, _) = conversation(
        store, ("user", "My wifi is called PastelNet."), ("assistant", "Thanks, I will keep that in mind.")
    )
    _, (_, invented) = conversation(
        store,
        ("user", "I forgot the name of my wifi again."),
        ("assistant", "No worries! I remember: your wifi is Lumia 2033, the router in the hallway."),
    )
    memory.index_pending()
    for question in ("What is my wifi called?", "What's the name of my wifi network?", "my wifi name"):
        hits = memory.search(question, k=5)
        ids = [h.message_id for h in hits]
        assert said in ids and invented in ids, question
        assert ids.index(said) < ids.index(invented), (question, [(h.role, h.text, round(h.score, 3)) for h in hits])


def test_catch_up_indexes_what_came_before_and_says_when_a_backlog_is_left(
    store: Store, home: Path, embedder: Embedder
) -> None:
    _, earlier = conversation(store, ("user", "My bike is a blue Gazelle."), ("user", "The shed code is 5521."))
    newest = earlier[-1]
    _, (later,) = conversation(store, ("user", "This one was stored after the call started."))
    memory = Memory(store, home, embedder=embedder, batch_size=1)
    try:
        assert memory.catch_up(newest, limit=1) is False  # one batch of one: the second is still queued
        assert memory.catch_up(newest) is True
        assert memory.pending_count() == 1  # only the later message, left for the next call
        assert memory.search("what bike do I ride", mode="vector", k=1)[0].message_id == earlier[0]
        assert later not in {h.message_id for h in memory.search("stored after the call", mode="vector")}
    finally:
        memory.close()


def test_search_with_nothing_indexed_loads_neither_the_embedder_nor_the_index(store: Store, home: Path) -> None:
    conversation(store, ("user", "Buy oat milk, rye bread and coffee beans."))
    memory = Memory(store, home, embedder=BrokenEmbedder())  # it would raise if anything were embedded
    try:
        hits = memory.search("oat milk", mode="hybrid")
        assert [h.text for h in hits] == ["Buy oat milk, rye bread and coffee beans."]
        assert memory.search("oat milk", mode="vector") == []
    finally:
        memory.close()
    assert not (home / "memory").exists()


def test_closing_an_index_never_opened_does_not_import_chromadb(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from storage.vectors import ChromaIndex; "
        f"ChromaIndex(Path({str(tmp_path / 'memory')!r})).close(); print('chromadb' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
