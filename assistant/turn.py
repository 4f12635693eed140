"""A reply in progress: stream it from the backend, store it while it streams, finalise it with its figures.

The reply is written every half second while it streams, so a stop (Esc, a closed pipe, Ctrl-C), an error or a
crash leaves an incomplete reply on disk, never a lost one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.context import PromptPlan
from assistant.errors import AssistantError, ModelError
from assistant.runtime.base import Backend, Chunk, GenerationParams
from storage.facts import Fact, RecallRecord, record_recalls

if TYPE_CHECKING:
    from assistant.session import Session
    from storage.memory import Recall

SAVE_EVERY_S = 0.5


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
    memories: list[dict[str, Any]] = field(default_factory=list)  # recalled snippets the reply was given
    facts: list[dict[str, Any]] = field(default_factory=list)  # remembered facts the reply was given

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def reason(exc: BaseException) -> str:
    """A short cause for a notice: our own sentences as they are, anything else with its type."""
    text = str(exc).strip().rstrip(".")
    if isinstance(exc, AssistantError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
        self.memories: list[Recall] = []  # recalled snippets of earlier conversations in this prompt
        self.facts: list[Fact] = []  # remembered facts in this prompt

    def _record_recalls(self) -> None:
        assert self.message_id is not None
        records = [RecallRecord(None, fact.id, None, rank) for rank, fact in enumerate(self.facts)]
        records += [
            RecallRecord(r.message_id, None, float(r.score), rank)
            for rank, r in enumerate(self.memories, start=len(records))
        ]
        try:
            record_recalls(self.session.store, self.message_id, records)
        except Exception as exc:  # bookkeeping only: the reply goes on
            extra = f"Which memories this reply used could not be recorded ({reason(exc)})."
            self.notice = f"{self.notice} {extra}" if self.notice else extra

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
        self._record_recalls()
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
        # The embedder must not take the model's cores: the background indexer waits while the reply streams.
        memory = self.session.memory
        if memory is not None:
            memory.pause_indexing()
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
            if memory is not None:
                memory.resume_indexing()
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
            memories=[
                {"message_id": r.message_id, "conversation_id": r.conversation_id, "text": r.text, "score": r.score}
                for r in self.memories
            ],
            facts=[{"id": f.id, "text": f.text} for f in self.facts],
        )
        self.session._notify_memory()
