"""The semantic memory as a chat session uses it: opened in a background thread, kept indexed, recalled per message.

The memory opens in a thread as soon as the session starts (the embedder's start-up overlaps the model's load).
With a background indexer (the TUI) every stored message is indexed soon after; without one (the one-shot CLI)
the warm-up catches up with what earlier calls left queued, before this call recalls, so no call holds its exit.
A memory failure never costs a message or a reply: recall falls back to word matches, or to nothing, with one
sentence for the turn's notice.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.memory_prompt import MemoryBlock, NotedHistory, build_memory_block
from assistant.sensitive import keep_in_prompt
from assistant.turn import reason as _reason
from storage.db import Store
from storage.facts import Fact, list_facts
from storage.revisions import superseded_among

if TYPE_CHECKING:
    from storage.memory import Memory, Recall

QUERY_CHARS = 2000  # the start of a long message says what it is about; embedding all of it only costs time

MemoryFactory = Callable[[Store, Path, Settings], "Memory"]


def open_memory(store: Store, home: Path, settings: Settings) -> Memory:
    """The real semantic memory: the bundled embedder and the vector index in the data dir."""
    from storage.embedder import Embedder
    from storage.memory import Memory

    return Memory(store, home, embedder=Embedder(threads=settings.embedder_threads))


class SessionMemory:
    """One session's memory: its warm-up thread, its indexing, and recall for a message."""

    def __init__(
        self,
        store: Store,
        home: Path,
        settings: Settings,
        *,
        memory: Memory | None = None,
        factory: MemoryFactory = open_memory,
        background_index: bool = True,
    ) -> None:
        self.store = store
        self.home = home
        self.settings = settings
        self.memory: Memory | None = memory  # None until started (or when it could not start; error says why)
        self.error: str | None = None
        self.background_index = background_index
        self.indexing_behind = False  # the warm-up left older messages pending: index them before exiting
        self._factory = factory
        self._thread: threading.Thread | None = None
        self._catch_up_upto = 0  # without a background indexer: the newest message stored before memory started
        self._lock = threading.Lock()

    def start(self) -> None:
        """Open the memory and load its embedder in a background thread (never on the caller's thread)."""
        with self._lock:
            if self._thread is not None:
                return
            if not self.background_index:
                from storage.memory import newest_message_id

                # Taken before this session stores anything: the warm-up catches up with earlier calls only.
                self._catch_up_upto = newest_message_id(self.store)
            self._thread = threading.Thread(target=self._warm_up, name="memory-warm-up", daemon=True)
            self._thread.start()

    def _warm_up(self) -> None:
        try:
            if self.memory is None:
                self.memory = self._factory(self.store, self.home, self.settings)
            if self.background_index:
                self.memory.start_indexer()
                self.memory.notify()  # messages stored while memory was off or the app was closed
                embedder = getattr(self.memory, "embedder", None)
                if embedder is not None and not getattr(embedder, "loaded", True):
                    embedder.load()
            elif self._catch_up_upto:
                # What earlier calls stored is indexed here, beside the model's load, before this call recalls:
                # so no call holds its exit to index its own messages. With nothing stored before, there is
                # nothing to recall, and neither the embedder nor the index is loaded at all.
                self.indexing_behind = not self.memory.catch_up(self._catch_up_upto)
        except Exception as exc:  # the chat goes on without (semantic) memory; the next turn says why
            self.error = _reason(exc)

    def wait(self, timeout: float | None = None) -> Memory | None:
        """The memory once its warm-up is over (None if it was never started or could not start)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.memory

    def index_now(self, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Index every message not yet indexed (the CLI calls it before exiting when the warm-up left a backlog)."""
        memory = self.wait()
        if memory is None:
            return 0
        return memory.index_pending(on_progress)

    def notify(self) -> None:
        """New messages are stored: the background indexer (if any) takes them soon."""
        if self.memory is not None and self.background_index:
            try:
                self.memory.notify()
            except Exception:  # indexing is retried from the durable queue; a chat turn must not fail for it
                pass

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """While a reply streams, the embedder must not take the model's cores: the background indexer waits."""
        memory = self.memory
        if memory is not None:
            memory.pause_indexing()
        try:
            yield
        finally:
            if memory is not None:
                memory.resume_indexing()

    def close(self) -> None:
        thread = self._thread
        if thread is not None:
            thread.join()
        memory, self.memory = self.memory, None
        with self._lock:
            self._thread = None
        if memory is None:
            return
        try:
            if self.background_index:
                memory.stop_indexer(wait=True)
        finally:
            memory.close()

    def recall(
        self, text: str, conversation_id: int | None, counter: Any, n_ctx: int, past: NotedHistory | None = None
    ) -> tuple[MemoryBlock, str | None]:
        """The memory for a message (facts, and recalled snippets not already given in the conversation's history
        ``past``) and at most one notice."""
        notice: str | None = None
        facts: list[Fact] = []
        try:
            facts = list_facts(self.store)
        except AssistantError as exc:
            notice = f"Remembered facts could not be read ({_reason(exc)}), so this reply was given none."
        query = text[:QUERY_CHARS]
        recalls: list[Recall] = []
        if not self.background_index and self._still_warming() and self._nothing_to_give(query, conversation_id):
            # A one-shot chat's memory may still be starting (chromadb, the embedder, the catch-up): when SQLite
            # alone shows that nothing could be given, the reply does not wait for it (the catch-up goes on
            # beside the reply; closing the session waits for it).
            return self._block(counter, facts, recalls, text, n_ctx, past), notice
        memory = self.wait()
        if memory is None:
            if self.error:
                notice = f"Memory is unavailable ({self.error}); earlier conversations were not recalled."
                self.error = None  # said once; later turns go on quietly
        else:
            k = self.settings.memory_k
            try:
                recalls = memory.search(query, k, exclude_conversation=conversation_id, mode="hybrid")
                recalls = self.relevant(query, recalls)
            except Exception as exc:
                try:
                    recalls = memory.search(query, k, exclude_conversation=conversation_id, mode="lexical")
                    notice = (
                        f"Recall by meaning failed ({_reason(exc)}), so only word matches were recalled; "
                        "`assistant memory reindex` rebuilds the index."
                    )
                except Exception:
                    notice = (
                        f"Memory is unavailable ({_reason(exc)}); earlier conversations were not recalled. "
                        "`assistant memory reindex` rebuilds the index."
                    )
        if recalls:
            try:  # a regenerated or edited message is no longer part of its conversation: not recalled either
                gone = superseded_among(self.store, [r.message_id for r in recalls])
                recalls = [r for r in recalls if r.message_id not in gone]
            except AssistantError:
                pass
        return self._block(counter, facts, recalls, text, n_ctx, past), notice

    def _block(
        self, counter: Any, facts: list[Fact], recalls: list[Recall], text: str, n_ctx: int, past: NotedHistory | None
    ) -> MemoryBlock:
        # A secret ("my wifi password is hunter2") goes in only when the message is about it: models repeat prompts.
        facts = [f for f in facts if keep_in_prompt(f.text, text)]
        recalls = [r for r in recalls if keep_in_prompt(r.text, text)]
        budget = self.settings.memory_budget(n_ctx)
        past = past or NotedHistory()
        return build_memory_block(counter, facts, recalls, budget, seen=past.seen, given_tokens=past.note_tokens)

    def _still_warming(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _nothing_to_give(self, query: str, conversation_id: int | None) -> bool:
        from storage.memory import nothing_to_give

        try:
            return nothing_to_give(self.store, query, conversation_id)
        except Exception:  # undecided: the search runs as usual
            return False

    def relevant(self, query: str, hits: list[Recall]) -> list[Recall]:
        """Only what helps answer ``query`` (``storage.retrieval.worth_giving``): memory must not make answers worse.

        The hybrid score is cosine similarity plus bounded word-match bonuses; on the labelled benchmark set, 95 %
        of answers found in the top five score 0.55 or more, against a median of 0.63 for the rest, so a floor of
        ``memory_min_score`` (0.5) drops about a quarter of the noise and almost no answers. A general question
        (not about the user) gets only messages holding all its content words (bench/quality.py measures it).
        """
        from storage.retrieval import worth_giving

        floor = self.settings.memory_min_score
        return [h for h in hits if worth_giving(query, h.text, h.score, floor)]
