"""One chat turn: store the user's message, fit the prompt, stream the reply, store everything.

The user's message is written before the model is even loaded, and the reply is written while it streams (every
half second), so a stop, an error or a crash leaves an incomplete reply on disk, never a lost one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from assistant.config import Settings, data_dir
from assistant.context import PromptPlan, plan_prompt
from assistant.errors import AssistantError, InputError, ModelError
from assistant.models import ModelSpec, resolve
from assistant.runtime.base import Backend, Chunk, GenerationParams
from storage.db import Store

SAVE_EVERY_S = 0.5
MAX_MESSAGE_CHARS = 1_000_000  # beyond this, a paste is almost surely a mistake; refuse rather than store


@dataclass(slots=True)
class TurnResult:
    conversation_id: int
    message_id: int
    user_message_id: int
    reply: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    ttft_ms: float | None
    tokens_per_s: float | None
    finish_reason: str
    notice: str | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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
    ) -> None:
        self.store = store
        self.settings = settings
        self.model_name = model or settings.model
        self.home = home or data_dir()
        self._loader = loader
        self._backend: Backend | None = None
        self._load_lock = threading.Lock()
        self.load_seconds: float | None = None

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

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
        with self._load_lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    def start_turn(self, text: str, conversation_id: int | None = None) -> Turn:
        """Store the user's message (first, always), then load the model and plan the prompt."""
        text = validate_message(text)
        if conversation_id is None:
            conversation_id = self.store.create_conversation(model=self.model_name)
        else:
            self.store.get_conversation(conversation_id)
        history = [{"role": m.role, "content": m.content} for m in self.store.messages(conversation_id)]
        user_message_id = self.store.add_message(conversation_id, "user", text)
        backend = self.load()
        plan = plan_prompt(backend, self.settings.system_prompt, history, text, self.settings.max_tokens)
        if plan.user_trimmed:
            self.store.update_message(user_message_id, context_trimmed=1)
        return Turn(self, backend, conversation_id, user_message_id, plan)


class Turn:
    """A reply in progress. Iterate ``stream()``; stop with the event or by closing the iterator."""

    def __init__(
        self, session: Session, backend: Backend, conversation_id: int, user_message_id: int, plan: PromptPlan
    ) -> None:
        self.session = session
        self.backend = backend
        self.conversation_id = conversation_id
        self.user_message_id = user_message_id
        self.plan = plan
        self.notice = plan.notice
        self.message_id: int | None = None
        self.result: TurnResult | None = None

    def stream(self, stop: threading.Event | None = None) -> Iterator[Chunk]:
        store, settings = self.session.store, self.session.settings
        self.message_id = store.add_message(
            self.conversation_id,
            "assistant",
            "",
            model=self.backend.name,
            complete=0,
            prompt_tokens=self.plan.prompt_tokens,
            context_trimmed=int(self.plan.history_dropped > 0 or self.plan.user_trimmed),
        )
        params = GenerationParams(
            max_tokens=settings.max_tokens, temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed
        )
        parts: list[str] = []
        tokens = 0
        first_s: float | None = None
        last_s = 0.0
        finish = "cancelled"
        error: str | None = None
        last_save = time.monotonic()
        source = self.backend.stream(self.plan.prompt, params)
        try:
            for chunk in source:
                if stop is not None and stop.is_set():
                    break
                if chunk.text and first_s is None:
                    first_s = chunk.elapsed_s
                parts.append(chunk.text)
                tokens += chunk.tokens
                last_s = chunk.elapsed_s
                if chunk.finish_reason:
                    finish = chunk.finish_reason
                if time.monotonic() - last_save >= SAVE_EVERY_S:
                    store.update_message(self.message_id, content="".join(parts), completion_tokens=tokens)
                    last_save = time.monotonic()
                yield chunk
                if stop is not None and stop.is_set():
                    break
        except AssistantError as exc:
            finish, error = "error", str(exc)
            raise
        except Exception as exc:
            finish, error = "error", f"{type(exc).__name__}: {exc}"
            raise ModelError(f"The model failed while replying ({error}); the partial reply was kept.") from exc
        finally:
            close = getattr(source, "close", None)
            if close:
                close()
            self._finish("".join(parts), tokens, first_s, last_s, finish, error)

    def _finish(
        self, reply: str, tokens: int, first_s: float | None, last_s: float, finish: str, error: str | None
    ) -> None:
        ttft_ms = round(first_s * 1000, 1) if first_s is not None else None
        decode_s = last_s - first_s if first_s is not None else 0.0
        tps = round((tokens - 1) / decode_s, 2) if tokens > 1 and decode_s > 0 else None
        complete = finish in ("stop", "length")
        assert self.message_id is not None
        self.session.store.update_message(
            self.message_id,
            content=reply,
            completion_tokens=tokens,
            ttft_ms=ttft_ms,
            tokens_per_s=tps,
            duration_ms=round(last_s * 1000, 1),
            finish_reason=finish,
            complete=int(complete),
            error=error,
        )
        self.result = TurnResult(
            conversation_id=self.conversation_id,
            message_id=self.message_id,
            user_message_id=self.user_message_id,
            reply=reply,
            model=self.backend.name,
            prompt_tokens=self.plan.prompt_tokens,
            completion_tokens=tokens,
            ttft_ms=ttft_ms,
            tokens_per_s=tps,
            finish_reason=finish,
            notice=self.notice,
        )
