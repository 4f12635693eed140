"""One chat turn: store the user's message, fit the prompt, stream the reply, store everything.

The user's message is written before the model is even loaded, and the reply is written while it streams (every
half second), so a stop, an error or a crash leaves an incomplete reply on disk, never a lost one.

With memory on, the session also opens the semantic memory in a background thread as soon as it is created (the
embedder's start-up overlaps the model's), puts remembered facts and the best snippets of earlier conversations
into the system prompt, records which ones each reply was given, and has every stored message indexed in the
background. A memory failure never costs a message or a reply: recall falls back to word matches, or to nothing,
with one sentence in ``turn.notice``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import Settings, data_dir, models_dir
from assistant.context import PromptPlan, plan_prompt
from assistant.errors import AssistantError, InputError
from assistant.memory_prompt import MemoryBlock, build_memory_block, parse_remember, remember_confirmation
from assistant.models import ModelSpec, resolve
from assistant.runtime.base import Backend, Chunk, GenerationParams
from assistant.turn import Turn
from assistant.turn import reason as _reason
from storage.db import Store
from storage.facts import MAX_FACT_CHARS, Fact, add_fact, list_facts

if TYPE_CHECKING:
    from storage.memory import Memory, Recall

MAX_MESSAGE_CHARS = 1_000_000  # beyond this, a paste is almost surely a mistake; refuse rather than store
QUERY_CHARS = 2000  # the start of a long message says what it is about; embedding all of it only costs time


def validate_message(text: str) -> str:
    """Refuse what cannot be a chat message: empty, binary, absurdly large."""
    if "\x00" in text:
        raise InputError("The message contains binary data (NUL bytes); send text only.")
    if not text.strip():
        raise InputError("Nothing to send: the message is empty.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InputError(
            f"The message is {len(text):,} characters long; the limit is {MAX_MESSAGE_CHARS:,}. Send a shorter one."
        )
    return text


BackendLoader = Callable[[ModelSpec, Settings], Backend]
MemoryFactory = Callable[[Store, Path, Settings], "Memory"]


def open_memory(store: Store, home: Path, settings: Settings) -> Memory:
    """The real semantic memory: the bundled embedder and the vector index in the data dir."""
    from storage.embedder import Embedder
    from storage.memory import Memory

    return Memory(store, home, embedder=Embedder(threads=settings.embedder_threads))


class CannedReply:
    """A reply written by the assistant itself, not the model (the confirmation of `/remember`)."""

    name = "assistant"
    n_ctx = 0

    def __init__(self, text: str) -> None:
        self.text = text

    def count_tokens(self, text: str) -> int:
        return 0

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        return ""

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Chunk]:
        yield Chunk(self.text, 0, 0.0, "stop")

    def close(self) -> None:
        pass


def load_llama(spec: ModelSpec, settings: Settings) -> Backend:
    from assistant.runtime.llama import LlamaBackend

    assert spec.path is not None
    return LlamaBackend(spec.path, name=spec.name, n_ctx=settings.context_size, threads=settings.effective_threads())


class Session:
    """Chat turns against one store and one (lazily loaded) model."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        model: str | None = None,
        home: Path | None = None,
        loader: BackendLoader = load_llama,
        memory: Memory | None = None,
        memory_factory: MemoryFactory = open_memory,
        use_memory: bool | None = None,
        background_index: bool = True,
    ) -> None:
        """``memory`` is used as given, else built by ``memory_factory`` (in a background thread) when memory is on.

        ``use_memory`` overrides the ``memory`` setting; ``background_index=False`` leaves indexing to
        ``index_now()`` (the one-shot CLI indexes before it exits instead of racing a thread).
        """
        self.store = store
        self.settings = settings
        self.model_name = model or settings.model
        self.home = home or data_dir()
        self._loader = loader
        self._backend: Backend | None = None
        self._load_lock = threading.Lock()
        self.load_seconds: float | None = None
        # Semantic memory: None until started (or when it could not start; memory_error says why).
        self.memory: Memory | None = memory
        self.memory_error: str | None = None
        self._memory_factory = memory_factory
        self._background_index = background_index
        self._memory_thread: threading.Thread | None = None
        self._memory_lock = threading.Lock()
        self._use_memory = settings.memory if use_memory is None else use_memory
        if self._use_memory:
            self.start_memory()

    @property
    def models_dir(self) -> Path:
        return models_dir(self.home)

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def load(self) -> Backend:
        """Load the model if it is not loaded yet (thread-safe; the TUI calls it from a worker)."""
        with self._load_lock:
            if self._backend is None:
                spec = resolve(self.store, self.model_name, self.models_dir)
                started = time.perf_counter()
                self._backend = self._loader(spec, self.settings)
                self.load_seconds = time.perf_counter() - started
            return self._backend

    def switch_model(self, name: str) -> None:
        """Use another model from the next turn on (checked now, loaded lazily)."""
        resolve(self.store, name, self.models_dir)
        with self._load_lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None
            self.model_name = name

    def close(self) -> None:
        self._close_memory()
        with self._load_lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    # -- memory ---------------------------------------------------------------------------------------------

    @property
    def use_memory(self) -> bool:
        """Whether turns recall earlier conversations and remembered facts (settable; the TUI toggles it)."""
        return self._use_memory

    @use_memory.setter
    def use_memory(self, value: bool) -> None:
        self._use_memory = bool(value)
        if self._use_memory:
            self.start_memory()

    def start_memory(self) -> None:
        """Open the memory and load its embedder in a background thread (never on the caller's thread)."""
        with self._memory_lock:
            if self._memory_thread is not None:
                return
            self._memory_thread = threading.Thread(target=self._warm_up, name="memory-warm-up", daemon=True)
            self._memory_thread.start()

    def _warm_up(self) -> None:
        try:
            if self.memory is None:
                self.memory = self._memory_factory(self.store, self.home, self.settings)
            if self._background_index:
                self.memory.start_indexer()
                self.memory.notify()  # messages stored while memory was off or the app was closed
            embedder = getattr(self.memory, "embedder", None)
            if embedder is not None and not getattr(embedder, "loaded", True):
                embedder.load()
        except Exception as exc:  # the chat goes on without (semantic) memory; the next turn says why
            self.memory_error = _reason(exc)

    def wait_for_memory(self, timeout: float | None = None) -> Memory | None:
        """The memory once its warm-up is over (None if memory is off or could not start)."""
        thread = self._memory_thread
        if thread is not None:
            thread.join(timeout)
        return self.memory

    def index_now(self, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Index every message not yet indexed (the CLI calls it before exiting, so the next call can recall)."""
        memory = self.wait_for_memory()
        if memory is None:
            return 0
        return memory.index_pending(on_progress)

    def _notify_memory(self) -> None:
        if self.memory is not None and self._background_index:
            try:
                self.memory.notify()
            except Exception:  # indexing is retried from the durable queue; a chat turn must not fail for it
                pass

    def _close_memory(self) -> None:
        thread = self._memory_thread
        if thread is not None:
            thread.join()
        memory, self.memory = self.memory, None
        with self._memory_lock:
            self._memory_thread = None
        if memory is None:
            return
        try:
            if self._background_index:
                memory.stop_indexer(wait=True)
        finally:
            memory.close()

    def recall(
        self, text: str, conversation_id: int | None, counter: Any, n_ctx: int
    ) -> tuple[MemoryBlock, str | None]:
        """The memory block for a message (facts and recalled snippets that fit) and at most one notice."""
        if not self._use_memory:
            return MemoryBlock(), None
        notice: str | None = None
        facts: list[Fact] = []
        try:
            facts = list_facts(self.store)
        except AssistantError as exc:
            notice = f"Remembered facts could not be read ({_reason(exc)}), so this reply was given none."
        memory = self.wait_for_memory()
        recalls: list[Recall] = []
        if memory is None:
            if self.memory_error:
                notice = f"Memory is unavailable ({self.memory_error}); earlier conversations were not recalled."
                self.memory_error = None  # said once; later turns go on quietly
        else:
            query = text[:QUERY_CHARS]
            k = self.settings.memory_k
            try:
                recalls = memory.search(query, k, exclude_conversation=conversation_id, mode="hybrid")
                recalls = self._relevant(query, recalls)
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
        budget = self.settings.memory_budget(n_ctx)
        block = build_memory_block(counter, facts, recalls, budget)
        return block, notice

    def _relevant(self, query: str, hits: list[Recall]) -> list[Recall]:
        """Drop weak hits and the user's own earlier asking of the same question (it holds no answer).

        The hybrid score is cosine similarity plus bounded word-match bonuses; on the labelled benchmark set, 95 %
        of answers found in the top five score 0.55 or more, against a median of 0.63 for the rest, so a floor of
        ``memory_min_score`` (0.5) drops about a quarter of the noise and almost no answers.
        """
        floor = self.settings.memory_min_score
        asked = " ".join(query.lower().split())
        return [h for h in hits if h.score >= floor and " ".join(h.text.lower().split()) != asked]

    # -- turns ----------------------------------------------------------------------------------------------

    def start_turn(self, text: str, conversation_id: int | None = None) -> Turn:
        """Store the user's message (first, always), then load the model and plan the prompt."""
        text = validate_message(text)
        remember = parse_remember(text)
        if remember is not None and remember.command:
            if not remember.fact:
                raise InputError("Nothing to remember: write the fact after /remember (`/remember I am vegetarian`).")
            if len(" ".join(remember.fact.split())) > MAX_FACT_CHARS:
                raise InputError(f"A fact can be at most {MAX_FACT_CHARS:,} characters; shorten it and try again.")
        if conversation_id is None:
            conversation_id = self.store.create_conversation(model=self.model_name)
        else:
            self.store.get_conversation(conversation_id)
        history = [{"role": m.role, "content": m.content} for m in self.store.messages(conversation_id)]
        user_message_id = self.store.add_message(conversation_id, "user", text)
        self._notify_memory()
        notices: list[str] = []
        if remember is not None and remember.fact:
            try:
                fact_id = add_fact(self.store, remember.fact, source_message_id=user_message_id)
            except AssistantError as exc:
                if remember.command:
                    raise
                notices.append(f"That could not be remembered: {exc}")
            else:
                if remember.command:
                    # Answered without the model: nothing to generate, so nothing to wait for.
                    reply = remember_confirmation(" ".join(remember.fact.split()), fact_id, self._use_memory)
                    plan = PromptPlan("", 0, [], 0, 0, False, None)
                    return Turn(self, CannedReply(reply), conversation_id, user_message_id, plan)  # type: ignore[arg-type]
        backend = self.load()
        block, memory_notice = self.recall(text, conversation_id, backend, backend.n_ctx)
        plan = plan_prompt(
            backend, self.settings.system_prompt, history, text, self.settings.max_tokens, memory=block.text
        )
        if plan.user_trimmed:
            self.store.update_message(user_message_id, context_trimmed=1)
        turn = Turn(self, backend, conversation_id, user_message_id, plan)
        turn.memories = list(block.recalls)  # type: ignore[arg-type]
        turn.facts = list(block.facts)
        turn.notice = " ".join(n for n in (plan.notice, *notices, memory_notice) if n) or None
        return turn
