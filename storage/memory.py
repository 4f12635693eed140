"""Semantic memory: recall earlier messages by meaning and by their words, across conversations.

SQLite is the source of truth. A message is *pending* until it appears in ``vector_indexed``; deleting an indexed
message by any path leaves a row in ``vector_tombstones`` (a trigger), which the next index pass purges from the
vector index. The vector index itself is disposable: missing or damaged, it is rebuilt from SQLite. Every search
result is re-read from SQLite, so a deleted message is never returned even while its vector lingers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from storage import retrieval
from storage.db import Store, now
from storage.embedder import Embedder
from storage.paths import memory_dir
from storage.vectors import ChromaIndex, IndexUnavailable, VectorIndex

log = logging.getLogger(__name__)

MODES = ("hybrid", "vector", "lexical")
BATCH = 32
PAUSE_S = 0.01
VECTOR_POOL = 30  # nearest messages asked of the index: deeper costs chromadb time and added no recall
DF_CACHE = 20_000  # words whose document frequency is kept
# A reply still streaming (complete = 0, no finish reason yet) changes every second: index it once it is done.
READY = "NOT (m.complete = 0 AND m.finish_reason IS NULL)"
PENDING = f"NOT EXISTS (SELECT 1 FROM vector_indexed v WHERE v.message_id = m.id) AND {READY}"


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
        self.batch_size = max(1, batch_size)
        self.on_notice = on_notice
        self.notices: list[str] = []
        self.last_error: str | None = None
        self._lock = threading.RLock()  # one index pass, rebuild or forget at a time
        self._checked = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pauses = 0  # pause_indexing() calls not yet resumed: the background indexer waits while > 0
        self._resumed = threading.Condition()
        self._df: dict[str, tuple[int, int]] = {}  # word -> (messages holding it, _total() when counted)

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
        if mode in ("hybrid", "vector"):
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
        with self._lock:
            try:
                self._check_index()
                return self.index.query(embedding, depth, exclude_conversation=exclude)
            except IndexUnavailable as exc:
                # Recall still works on words while the index is rebuilt from SQLite.
                self._rebuild(exc)
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

    # -- indexing -------------------------------------------------------------------------------------------

    def pending_count(self) -> int:
        with self.store.guard() as db:
            return int(db.execute(f"SELECT count(*) FROM messages m WHERE {PENDING}").fetchone()[0])

    def index_pending(self, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Embed and add every pending message (in batches), purge tombstones; returns how many were indexed."""
        return self._index_pending(on_progress, None)

    def _index_pending(self, on_progress: Callable[[int, int], None] | None, stop: threading.Event | None) -> int:
        done = 0
        with self._lock:
            try:
                self._check_index()
                self._purge_tombstones()
            except IndexUnavailable as exc:
                self._rebuild(exc)
        total = self.pending_count()
        while stop is None or not stop.is_set():
            if stop is not None and not self._wait_unpaused(stop):
                break
            try:
                count = self._index_batch()
            except IndexUnavailable as exc:
                with self._lock:
                    self._rebuild(exc)
                total = max(total, done + self.pending_count())
                continue
            if not count:
                break
            done += count
            if on_progress:
                on_progress(done, max(total, done))
            time.sleep(PAUSE_S)  # let the chat model's threads have the cores between batches
        return done

    def _index_batch(self) -> int:
        with self.store.guard() as db:
            rows = db.execute(
                f"SELECT m.id, m.conversation_id, m.role, m.content FROM messages m WHERE {PENDING} "
                "ORDER BY m.id LIMIT ?",
                [self.batch_size],
            ).fetchall()
        if not rows:
            return 0
        ids: list[int] = []
        texts: list[str] = []
        metadatas: list[dict] = []
        for mid, conversation_id, role, content in rows:
            if not retrieval.worth_recalling(content):
                continue  # marked as indexed below without a vector: nothing in it to find by meaning
            for number, piece in enumerate(retrieval.chunks(content)):
                ids.append(mid)
                texts.append(piece)
                metadatas.append({"conversation_id": conversation_id, "role": role, "chunk": number})
        # Embedding happens outside the lock: searches go on meanwhile.
        vectors = self.embedder.embed(texts) if texts else []
        batch = [r[0] for r in rows]
        marks = ", ".join("?" for _ in batch)
        with self._lock:
            self._check_index()
            if texts:
                self.index.upsert(ids, vectors, metadatas)
            kept = self._mark_indexed(batch, marks)
        gone = [mid for mid in batch if mid not in kept]
        if gone:
            self.index.delete(gone)
        return len(rows)

    def _mark_indexed(self, batch: list[int], marks: str) -> set[int]:
        with self.store.guard(write=True) as db:
            # Only messages that still exist: one deleted while it was being embedded has no tombstone yet.
            db.execute(
                f"INSERT OR IGNORE INTO vector_indexed (message_id, indexed_at) "
                f"SELECT id, ? FROM messages WHERE id IN ({marks})",
                [now(), *batch],
            )
            return {r[0] for r in db.execute(f"SELECT id FROM messages WHERE id IN ({marks})", batch)}

    def _purge_tombstones(self) -> int:
        with self.store.guard() as db:
            ids = [r[0] for r in db.execute("SELECT message_id FROM vector_tombstones ORDER BY message_id")]
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            self.index.delete(part)
            self._settle_tombstones(part)
        return len(ids)

    def _settle_tombstones(self, ids: list[int]) -> None:
        # SQLite reuses the highest rowid: a new message may already carry a purged id and have been indexed
        # before the purge deleted its vectors. Queue such a message again.
        marks = ", ".join("?" for _ in ids)
        with self.store.guard(write=True) as db:
            db.execute(f"DELETE FROM vector_tombstones WHERE message_id IN ({marks})", ids)
            db.execute(f"DELETE FROM vector_indexed WHERE message_id IN ({marks})", ids)

    def _check_index(self) -> None:
        """Once per Memory: an index that lost its data (directory deleted) while SQLite says messages are in it."""
        if self._checked:
            return
        empty = self.index.count() == 0
        self._checked = True
        if empty:
            with self.store.guard(write=True) as db:
                stale = db.execute("SELECT count(*) FROM vector_indexed").fetchone()[0]
                if stale:
                    db.execute("DELETE FROM vector_indexed")
                    db.execute("DELETE FROM vector_tombstones")
            if stale:
                self._notice(f"The memory index was missing; rebuilding it from {stale} stored messages.")

    def _rebuild(self, exc: Exception) -> None:
        """Start an empty index and queue every message again; never fatal."""
        log.warning("memory index unavailable (%s); rebuilding from SQLite", exc)
        self._notice("The memory index was damaged or missing; it is being rebuilt from your stored messages.")
        self.index.reset()
        with self.store.guard(write=True) as db:
            db.execute("DELETE FROM vector_indexed")
            db.execute("DELETE FROM vector_tombstones")
        self._checked = True
        self._wake.set()

    def _notice(self, text: str) -> None:
        if text in self.notices:
            return
        self.notices.append(text)
        log.warning(text)
        if self.on_notice:
            try:
                self.on_notice(text)
            except Exception:
                log.exception("memory notice callback failed")

    def reindex(self, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Drop the index and rebuild it from SQLite."""
        with self._lock:
            self.index.reset()
            with self.store.guard(write=True) as db:
                db.execute("DELETE FROM vector_indexed")
                db.execute("DELETE FROM vector_tombstones")
            self._checked = True
        return self.index_pending(on_progress)

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
        with self._lock:
            try:
                self.index.delete(ids)
            except IndexUnavailable as exc:
                self._rebuild(exc)
                return
            if ids:
                self._settle_tombstones(ids)

    # -- background indexer ---------------------------------------------------------------------------------

    def start_indexer(self) -> None:
        """Index pending messages in a daemon thread, now and whenever notify() is called."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._wake.set()  # catch up with whatever is pending already
        self._thread = threading.Thread(target=self._run, name="memory-indexer", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """New messages are stored: index them soon."""
        self._wake.set()

    def stop_indexer(self, wait: bool = True) -> None:
        self._stop.set()
        self._wake.set()
        with self._resumed:
            self._resumed.notify_all()  # a paused indexer stops too
        thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()
        self._thread = None

    def pause_indexing(self) -> None:
        """Hold the background indexer (after its current batch) until every pause is resumed; for a streaming reply.

        Pauses nest: each call needs its own resume_indexing(). Searches and index_pending() are not held.
        """
        with self._resumed:
            self._pauses += 1

    def resume_indexing(self) -> None:
        """Undo one pause_indexing(); the indexer goes on when none is left (an extra resume is ignored)."""
        with self._resumed:
            self._pauses = max(0, self._pauses - 1)
            if not self._pauses:
                self._resumed.notify_all()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """``with memory.paused():`` the background indexer does not embed (e.g. while a reply streams)."""
        self.pause_indexing()
        try:
            yield
        finally:
            self.resume_indexing()

    @property
    def indexing_paused(self) -> bool:
        return self._pauses > 0

    def _wait_unpaused(self, stop: threading.Event) -> bool:
        """Block while paused; False if the indexer was stopped meanwhile."""
        with self._resumed:
            while self._pauses and not stop.is_set():
                self._resumed.wait(0.5)
        return not stop.is_set()

    @property
    def indexer_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self._index_pending(None, self._stop)
                self.last_error = None
            except Exception as exc:
                # The messages stay pending in SQLite; the next notify() tries again.
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("memory indexing failed; the messages stay pending")
                self._stop.wait(1.0)

    def close(self) -> None:
        self.stop_indexer(wait=True)
        close = getattr(self.index, "close", None)
        if close:
            close()
