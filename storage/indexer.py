"""Keeping the vector index in step with SQLite: index pending messages, purge tombstones, rebuild.

A message is *pending* until it appears in ``vector_indexed``; deleting an indexed message by any path leaves a
row in ``vector_tombstones`` (a trigger), which the next pass purges from the vector index. The index is
disposable: missing or damaged, it is rebuilt from SQLite. :class:`Indexer` does this on the caller's thread
(:meth:`Indexer.index_pending`) or in a daemon thread woken by :meth:`Indexer.notify`, which a streaming reply can
hold with :meth:`Indexer.paused`. :class:`storage.memory.Memory` searches and forgets on top of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from storage import retrieval
from storage.db import Store, now
from storage.embedder import Embedder
from storage.vectors import IndexUnavailable, VectorIndex

log = logging.getLogger(__name__)

BATCH = 32
PAUSE_S = 0.01
# A reply still streaming (complete = 0, no finish reason yet) changes every second: index it once it is done.
READY = "NOT (m.complete = 0 AND m.finish_reason IS NULL)"
PENDING = f"NOT EXISTS (SELECT 1 FROM vector_indexed v WHERE v.message_id = m.id) AND {READY}"


def _bounded(upto: int | None) -> tuple[str, list[int]]:
    """The pending condition, limited to ids up to ``upto`` when given."""
    return (f"{PENDING} AND m.id <= ?", [upto]) if upto is not None else (PENDING, [])


class Indexer:
    """Embeds pending messages into the vector index, on demand or in a background thread."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        index: VectorIndex,
        *,
        batch_size: int = BATCH,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.index = index
        self.batch_size = max(1, batch_size)
        self.on_notice = on_notice
        self.notices: list[str] = []
        self.last_error: str | None = None
        self.lock = threading.RLock()  # one index pass, rebuild, search of the index or forget at a time
        self._checked = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pauses = 0  # pause() calls not yet resumed: the background indexer waits while > 0
        self._resumed = threading.Condition()
        self.held = threading.Event()  # set while the background thread waits for a resume (tests wait on it)

    # -- one pass -------------------------------------------------------------------------------------------

    def pending_count(self, upto: int | None = None) -> int:
        """Messages not indexed yet (only those with ids up to ``upto`` when given)."""
        where, args = _bounded(upto)
        with self.store.guard() as db:
            return int(db.execute(f"SELECT count(*) FROM messages m WHERE {where}", args).fetchone()[0])

    def index_pending(
        self,
        on_progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
        *,
        upto: int | None = None,
        limit: int | None = None,
    ) -> int:
        """Embed and add pending messages (in batches), purge tombstones; returns how many were indexed.

        Every pending message, or only those with ids up to ``upto``, oldest first, until about ``limit`` are done
        (whole batches). With ``stop`` (the background thread), the pass also waits while paused and ends when
        ``stop`` is set.
        """
        done = 0
        with self.lock:
            try:
                self.check_index()
                self._purge_tombstones()
            except IndexUnavailable as exc:
                self.rebuild(exc)
        total = self.pending_count(upto)
        while (stop is None or not stop.is_set()) and (limit is None or done < limit):
            if stop is not None and not self._wait_unpaused(stop):
                break
            try:
                count = self._index_batch(upto)
            except IndexUnavailable as exc:
                with self.lock:
                    self.rebuild(exc)
                total = max(total, done + self.pending_count(upto))
                continue
            if not count:
                break
            done += count
            if on_progress:
                on_progress(done, max(total, done))
            time.sleep(PAUSE_S)  # let the chat model's threads have the cores between batches
        return done

    def _index_batch(self, upto: int | None = None) -> int:
        where, args = _bounded(upto)
        with self.store.guard() as db:
            rows = db.execute(
                f"SELECT m.id, m.conversation_id, m.role, m.content FROM messages m WHERE {where} "
                "ORDER BY m.id LIMIT ?",
                [*args, self.batch_size],
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
        with self.lock:
            self.check_index()
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
            self.settle_tombstones(part)
        return len(ids)

    def settle_tombstones(self, ids: list[int]) -> None:
        """These messages' vectors are gone from the index: clear their tombstones and indexed marks."""
        # SQLite reuses the highest rowid: a new message may already carry a purged id and have been indexed
        # before the purge deleted its vectors. Queue such a message again.
        marks = ", ".join("?" for _ in ids)
        with self.store.guard(write=True) as db:
            db.execute(f"DELETE FROM vector_tombstones WHERE message_id IN ({marks})", ids)
            db.execute(f"DELETE FROM vector_indexed WHERE message_id IN ({marks})", ids)

    # -- repair ---------------------------------------------------------------------------------------------

    def check_index(self) -> None:
        """Once per indexer: an index that lost its data (directory deleted) while SQLite says messages are in it."""
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

    def rebuild(self, exc: Exception) -> None:
        """Start an empty index and queue every message again; never fatal (call with ``lock`` held)."""
        log.warning("memory index unavailable (%s); rebuilding from SQLite", exc)
        self._notice("The memory index was damaged or missing; it is being rebuilt from your stored messages.")
        self._reset()
        self._wake.set()

    def reindex(self, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Drop the index and rebuild it from SQLite."""
        with self.lock:
            self._reset()
        return self.index_pending(on_progress)

    def _reset(self) -> None:
        self.index.reset()
        with self.store.guard(write=True) as db:
            db.execute("DELETE FROM vector_indexed")
            db.execute("DELETE FROM vector_tombstones")
        self._checked = True

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

    # -- background thread ----------------------------------------------------------------------------------

    def start(self) -> None:
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

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        self._wake.set()
        with self._resumed:
            self._resumed.notify_all()  # a paused indexer stops too
        thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def pause(self) -> None:
        """Hold the background thread (after its current batch) until every pause is resumed.

        Pauses nest: each call needs its own resume(). Searches and index_pending() without ``stop`` are not held.
        """
        with self._resumed:
            self._pauses += 1

    def resume(self) -> None:
        """Undo one pause(); the thread goes on when none is left (an extra resume is ignored)."""
        with self._resumed:
            self._pauses = max(0, self._pauses - 1)
            if not self._pauses:
                self._resumed.notify_all()

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.pause()
        try:
            yield
        finally:
            self.resume()

    @property
    def is_paused(self) -> bool:
        return self._pauses > 0

    def _wait_unpaused(self, stop: threading.Event) -> bool:
        """Block while paused; False if the thread was stopped meanwhile."""
        with self._resumed:
            while self._pauses and not stop.is_set():
                self.held.set()
                self._resumed.wait()  # stop() and resume() both notify
            self.held.clear()
        return not stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.index_pending(None, self._stop)
                self.last_error = None
            except Exception as exc:
                # The messages stay pending in SQLite; the next notify() tries again.
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("memory indexing failed; the messages stay pending")
                self._stop.wait(1.0)
