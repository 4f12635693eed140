"""Semantic memory: recall earlier messages by meaning and by their words, across conversations; forget them.

SQLite is the source of truth; the vector index is derived and kept in step by :class:`storage.indexer.Indexer`
(pending messages, tombstones, rebuilds, the background thread). Every search result is re-read from SQLite, so a
deleted message is never returned even while its vector lingers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from storage import retrieval
from storage.db import Store
from storage.embedder import Embedder
from storage.indexer import BATCH, PENDING, READY, Indexer
from storage.paths import memory_dir
from storage.vectors import ChromaIndex, IndexUnavailable, VectorIndex

__all__ = ["BATCH", "CATCH_UP", "MODES", "PENDING", "READY", "Memory", "Recall", "newest_message_id"]

log = logging.getLogger(__name__)

MODES = ("hybrid", "vector", "lexical")
VECTOR_POOL = 30  # nearest messages asked of the index: deeper costs chromadb time and added no recall
DF_CACHE = 20_000  # words whose document frequency is kept
CATCH_UP = 64  # pending messages a one-shot chat indexes before it recalls (two batches: well under a second)


@dataclass(slots=True)
class Recall:
    """One recalled message. ``score``: higher is better; its scale depends on the search mode.

    hybrid: cosine similarity plus up to ~0.6 of bonuses (mostly for holding the query's words) and minus up to
    0.24 for a message too short to state much (see ``retrieval.fuse``);
    vector: cosine similarity (-1..1); lexical: BM25 relevance (>= 0, unbounded, larger for rarer words).
    """

    message_id: int
    conversation_id: int
    role: str
    text: str
    score: float
    created_at: str

    def to_dict(self) -> dict:
        return asdict(self)


def newest_message_id(store: Store) -> int:
    """The id of the newest stored message (0 for none): the bound a later :meth:`Memory.catch_up` is given."""
    with store.guard() as db:
        return int(db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0])


def nothing_to_give(store: Store, query: str, exclude_conversation: int | None = None) -> bool:
    """Whether no stored message can be worth giving for ``query`` (``retrieval.worth_giving``), known from SQLite
    alone, without the embedder or the vector index.

    A question not about the user gets only messages holding every one of its content words, and each word's stem
    is a prefix of the word: a message that lacks one stem as a substring cannot qualify. So "no message holds them
    all" is certain; "some message does" only means the search must run. Undecided (False) for a personal question
    and for stems SQLite's ``lower()`` would not fold (non-ASCII).
    """
    if retrieval.personal(query):
        return False
    stems = sorted({retrieval.stem(word) for word in retrieval.significant(query)})
    if not stems:
        return True  # no content words: nothing can hold them all
    if not all(s.isascii() for s in stems):
        return False
    where = " AND ".join("instr(lower(content), ?) > 0" for _ in stems)
    params: list[object] = list(stems)
    if exclude_conversation is not None:  # as the search does: the conversation itself is already in the prompt
        where += " AND conversation_id != ?"
        params.append(exclude_conversation)
    with store.guard() as db:
        return db.execute(f"SELECT 1 FROM messages WHERE {where} LIMIT 1", params).fetchone() is None


class Memory:
    """Indexing and recall over the store's messages."""

    def __init__(
        self,
        store: Store,
        home: Path,
        embedder: Embedder | None = None,
        index: VectorIndex | None = None,
        *,
        batch_size: int = BATCH,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.home = home
        self.embedder = embedder or Embedder(threads=1)
        self.index: VectorIndex = index or ChromaIndex(memory_dir(home))
        self.indexer = Indexer(store, self.embedder, self.index, batch_size=batch_size, on_notice=on_notice)
        self._df: dict[str, tuple[int, int]] = {}  # word -> (messages holding it, _total() when counted)

    @property
    def notices(self) -> list[str]:
        """Sentences about the index (missing, rebuilt) said so far."""
        return self.indexer.notices

    @property
    def last_error(self) -> str | None:
        """Why the background indexer's last pass failed (None once one succeeds)."""
        return self.indexer.last_error

    # -- search ---------------------------------------------------------------------------------------------

    def search(
        self, query: str, k: int = 5, *, exclude_conversation: int | None = None, mode: str = "hybrid"
    ) -> list[Recall]:
        """At most k earlier messages relevant to ``query``, best first."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if k <= 0 or not query.strip():
            return []
        depth = max(VECTOR_POOL, k * 6)
        vector: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        frequencies = self._frequencies(query) if mode != "vector" else {}
        # Nothing indexed yet (a new data dir): no need to load the embedder or open the index to find nothing.
        if mode in ("hybrid", "vector") and self._any_indexed():
            vector = self._vector(query, depth, exclude_conversation)
        if mode in ("hybrid", "lexical"):
            lexical = self._lexical(frequencies, max(retrieval.LEXICAL_POOL, depth), exclude_conversation)
        rows = self._rows({mid for mid, _ in vector} | {mid for mid, _ in lexical})
        # Re-checked against SQLite: deleted messages (vectors not yet purged) and chatter drop out here.
        rows = {mid: row for mid, row in rows.items() if retrieval.worth_recalling(row["content"])}
        if exclude_conversation is not None:
            rows = {mid: row for mid, row in rows.items() if row["conversation_id"] != exclude_conversation}
        if mode == "hybrid":
            total = self._total()
            scores = retrieval.fuse(
                [(mid, score) for mid, score in vector if mid in rows],
                [(mid, score) for mid, score in lexical if mid in rows],
                {mid: retrieval.Doc(row["content"], row["role"], row["created_at"]) for mid, row in rows.items()},
                {word: retrieval.idf(df, total) for word, df in frequencies.items()},
                retrieval.personal(query),
                retrieval.about_present(query),
            )
        else:
            scores = {mid: score for mid, score in (vector or lexical) if mid in rows}
        ranked = sorted(scores.items(), key=lambda item: (-item[1], -item[0]))[:k]
        return [
            Recall(
                message_id=mid,
                conversation_id=rows[mid]["conversation_id"],
                role=rows[mid]["role"],
                text=rows[mid]["content"],
                score=round(score, 6),
                created_at=rows[mid]["created_at"],
            )
            for mid, score in ranked
        ]

    def _vector(self, query: str, depth: int, exclude: int | None) -> list[tuple[int, float]]:
        embedding = self.embedder.embed([query])[0]
        with self.indexer.lock:
            try:
                self.indexer.check_index()
                return self.index.query(embedding, depth, exclude_conversation=exclude)
            except IndexUnavailable as exc:
                # Recall still works on words while the index is rebuilt from SQLite.
                self.indexer.rebuild(exc)
                return []

    def _lexical(self, frequencies: dict[str, int], depth: int, exclude: int | None) -> list[tuple[int, float]]:
        match = retrieval.lexical_query(retrieval.searchable(frequencies, self._total()))
        if not match:
            return []
        # FTS5 ranks first and only the pool is joined: the conversation and length checks happen in search().
        sql = "SELECT rowid, rank FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?"
        with self.store.guard() as db:
            rows = db.execute(sql, [match, depth + (20 if exclude is not None else 0)]).fetchall()
        return [(int(mid), -float(rank)) for mid, rank in rows]  # FTS5's rank (bm25) is lower-is-better

    def _any_indexed(self) -> bool:
        with self.store.guard() as db:
            return db.execute("SELECT EXISTS (SELECT 1 FROM vector_indexed)").fetchone()[0] == 1

    def _total(self) -> int:
        """About how many messages are stored (the highest id: an index lookup, not a count of 100,000 rows)."""
        with self.store.guard() as db:
            return int(db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0])

    def _frequencies(self, query: str) -> dict[str, int]:
        """How many messages hold each significant query word (FTS5's stemming), cached per word.

        A cached count is trusted until the store grows by a tenth: document frequency only decides which words
        are common and how much a word weighs, neither of which moves fast.
        """
        terms = retrieval.significant(query)
        if not terms:
            return {}
        total = self._total()
        out: dict[str, int] = {}
        with self.store.guard() as db:
            for term in terms:
                cached = self._df.get(term)
                if cached is None or total > cached[1] * 1.1 + 10:
                    df = db.execute(
                        "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", [f'"{term}"']
                    ).fetchone()[0]
                    cached = (int(df), total)
                    if len(self._df) > DF_CACHE:
                        self._df.clear()
                    self._df[term] = cached
                out[term] = cached[0]
        return out

    def _rows(self, ids: set[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        with self.store.guard() as db:
            rows = db.execute(
                f"SELECT id, conversation_id, role, content, created_at FROM messages WHERE id IN ({marks})",
                sorted(ids),
            ).fetchall()
        return {r[0]: {"conversation_id": r[1], "role": r[2], "content": r[3], "created_at": r[4]} for r in rows}

    # -- forgetting -----------------------------------------------------------------------------------------

    def forget_conversation(self, conversation_id: int) -> None:
        """Delete a conversation from SQLite and its vectors from the index at once."""
        with self.store.guard() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM messages WHERE conversation_id = ?", [conversation_id])]
        self.store.delete_conversation(conversation_id)
        self._forget_vectors(ids)

    def forget_message(self, message_id: int) -> None:
        self.store.delete_message(message_id)
        self._forget_vectors([message_id])

    def _forget_vectors(self, ids: list[int]) -> None:
        # SQLite already forgot (search never returns these); a failure here leaves tombstones for the next pass.
        with self.indexer.lock:
            try:
                self.index.delete(ids)
            except IndexUnavailable as exc:
                self.indexer.rebuild(exc)
                return
            if ids:
                self.indexer.settle_tombstones(ids)

    # -- indexing (storage.indexer does the work) -----------------------------------------------------------

    def pending_count(self) -> int:
        return self.indexer.pending_count()

    def index_pending(self, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Embed and add every pending message (in batches), purge tombstones; returns how many were indexed."""
        return self.indexer.index_pending(on_progress)

    def catch_up(self, upto: int, limit: int = CATCH_UP) -> bool:
        """Get ready to search: open the index, load the embedder, index messages pending with ids up to ``upto``.

        The one-shot CLI calls it while the model loads: what earlier calls stored (their replies included) is
        indexed before this call recalls, so no call needs to index its own messages before it exits. At most
        about ``limit`` are indexed (a large backlog must not delay the reply); True when none of them is left.
        """
        # The embedder loads beside the index: onnxruntime's session is built in C++ while chromadb imports.
        failed: list[BaseException] = []

        def load() -> None:
            try:
                self.embedder.load()
            except BaseException as exc:  # raised below, on the caller's thread
                failed.append(exc)

        loader = threading.Thread(target=load, name="embedder-load", daemon=True)
        loader.start()
        try:
            self.indexer.index_pending(upto=upto, limit=limit)  # opens the index (and repairs it) first
        finally:
            loader.join()
        if failed:
            raise failed[0]
        return self.indexer.pending_count(upto) == 0

    def reindex(self, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Drop the index and rebuild it from SQLite."""
        return self.indexer.reindex(on_progress)

    def start_indexer(self) -> None:
        """Index pending messages in a daemon thread, now and whenever notify() is called."""
        self.indexer.start()

    def notify(self) -> None:
        """New messages are stored: index them soon."""
        self.indexer.notify()

    def stop_indexer(self, wait: bool = True) -> None:
        self.indexer.stop(wait)

    @property
    def indexer_running(self) -> bool:
        return self.indexer.running

    def pause_indexing(self) -> None:
        """Hold the background indexer (after its current batch) until every pause is resumed; for a streaming reply.

        Pauses nest: each call needs its own resume_indexing(). Searches and index_pending() are not held.
        """
        self.indexer.pause()

    def resume_indexing(self) -> None:
        """Undo one pause_indexing(); the indexer goes on when none is left (an extra resume is ignored)."""
        self.indexer.resume()

    def paused(self) -> AbstractContextManager[None]:
        """``with memory.paused():`` the background indexer does not embed (e.g. while a reply streams)."""
        return self.indexer.paused()

    @property
    def indexing_paused(self) -> bool:
        return self.indexer.is_paused

    def close(self) -> None:
        self.indexer.stop(wait=True)
        close = getattr(self.index, "close", None)
        if close:
            close()
