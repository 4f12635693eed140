"""A reply in progress: stream it from the backend, store it while it streams, finalise it with its figures.

The reply is written every half second while it streams, so a stop (Esc, a closed pipe, Ctrl-C), an error or a
crash leaves an incomplete reply on disk, never a lost one; another program holding the database only delays the
writes (``assistant.reply_store``). Once the reply is stored, the after-reply steps run in order (indexing for
memory today, the checker next); each may add to the result, and a step that fails becomes a notice.

A ``Turn`` is given everything it needs (the store, the generation parameters, the steps) and knows nothing of
the session that made it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.context import PromptPlan
from assistant.errors import AssistantError, ModelError, StorageError
from assistant.loops import NOTICE as LOOP_NOTICE
from assistant.reply_store import Blocked, ReplyWriter, cause_of
from assistant.runtime.base import Backend, Chunk, GenerationParams
from storage.db import Store
from storage.facts import Fact, RecallRecord, record_recalls

if TYPE_CHECKING:
    from assistant.checks.privacy import PolicyOutcome
    from assistant.reply_check import Guard
    from assistant.tools.core import ToolResult
    from storage.memory import Recall


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
    saved: bool = True  # False: the database could not be written; the reply was kept to be written later
    checks: dict[str, Any] | None = None  # the checker's verdict (assistant.checks.ReplyCheck.to_dict()), when on
    badge: str | None = None  # its one word: ok, check, unsupported or masked
    adapter: str | None = None  # the learning adapter the reply was written with ("v3"); None: the base model
    tools: list[dict[str, Any]] = field(default_factory=list)  # tool results it was given (ToolResult.to_dict())

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def add_notice(self, text: str) -> None:
        self.notice = f"{self.notice} {text}" if self.notice else text


AfterReply = Callable[["Turn", TurnResult], None]
"""A step run once a reply is stored: it receives the finished turn and may add to its result."""


@dataclass(slots=True)
class TurnSetup:
    """What a turn needs from the session that starts it."""

    store: Store
    params: GenerationParams
    after_reply: Sequence[AfterReply] = ()
    quiet: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext  # held while the reply streams
    spool: Path | None = None  # where a reply that cannot be written is kept (see reply_store)


def reason(exc: BaseException) -> str:
    """A short cause for a notice: our own sentences as they are, anything else with its type."""
    text = str(exc).strip().rstrip(".")
    if isinstance(exc, AssistantError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Turn:
    """A reply in progress. Iterate ``stream()``; stop with the event or by closing the iterator."""

    def __init__(
        self,
        setup: TurnSetup,
        backend: Backend,
        conversation_id: int,
        user_message_id: int,
        plan: PromptPlan,
        *,
        replaces: Sequence[int] = (),
    ) -> None:
        self.setup = setup
        self.backend = backend
        self.conversation_id = conversation_id
        self.user_message_id = user_message_id
        self.plan = plan
        self.replaces = list(replaces)  # messages this reply supersedes (regenerate, retry), marked once it exists
        self.notice = plan.notice
        self.adapter: str | None = getattr(backend, "adapter_version", None)  # the session swapped it in already
        self.message_id: int | None = None
        self.result: TurnResult | None = None
        self.memories: list[Recall] = []  # recalled snippets of earlier conversations new in this prompt
        self.facts: list[Fact] = []  # remembered facts in this prompt
        self.on_save_blocked: Blocked | None = None  # called when the final write meets a lock (tests use it)
        # The checker (assistant.reply_check): the guard masks the stream; the rest is read by the after-reply step.
        self.guard: Guard | None = None
        self.sources: list[str] = []  # what the reply may rest on: the user's statements, facts, recalled snippets
        self.logprobs: list[tuple[int, float]] = []  # (offset into the raw reply, log-probability), when recorded
        self.privacy: PolicyOutcome | None = None  # the privacy check over the whole reply, once it has ended
        self.tools: list[ToolResult] = []  # results of the tools called for this reply (stored with it)
        self._unsaved = ""  # the sentence for a reply that could not be written

    def _add_notice(self, text: str) -> None:
        self.notice = f"{self.notice} {text}" if self.notice else text

    def _record_recalls(self) -> None:
        assert self.message_id is not None
        records = [RecallRecord(None, fact.id, None, rank) for rank, fact in enumerate(self.facts)]
        records += [
            RecallRecord(r.message_id, None, float(r.score), rank)
            for rank, r in enumerate(self.memories, start=len(records))
        ]
        try:
            record_recalls(self.setup.store, self.message_id, records)
        except Exception as exc:  # bookkeeping only: the reply goes on
            self._add_notice(f"Which memories this reply used could not be recorded ({reason(exc)}).")

    def _supersede(self) -> None:
        if not self.replaces:
            return
        from storage.revisions import supersede

        assert self.message_id is not None
        try:
            supersede(self.setup.store, self.replaces, self.message_id)
        except StorageError as exc:  # the new reply still counts; the old one stays visible beside it
            self._add_notice(f"The earlier reply could not be marked as replaced ({reason(exc)}).")

    def stream(self, stop: threading.Event | None = None) -> Iterator[Chunk]:
        store, params = self.setup.store, self.setup.params
        self.message_id = store.add_message(
            self.conversation_id,
            "assistant",
            "",
            model=self.backend.name,
            adapter=self.adapter,
            complete=0,
            prompt_tokens=self.plan.prompt_tokens,
            context_trimmed=int(self.plan.history_dropped > 0 or self.plan.user_trimmed),
        )
        self._supersede()
        self._record_recalls()
        writer = ReplyWriter(store, self.setup.spool, self.on_save_blocked)
        guard = self.guard
        parts: list[str] = []  # as shown: masked by the guard
        raw_chars = 0
        tokens = 0
        first_s: float | None = None
        last_s = 0.0
        finish = "cancelled"
        error: str | None = None
        ended = False  # the stream ran to its end (not closed early, no error)
        with self.setup.quiet():  # the embedder must not take the model's cores while the reply streams
            source = self.backend.stream(self.plan.prompt, params)
            try:
                for chunk in source:
                    if stop is not None and stop.is_set():
                        break
                    if chunk.text and first_s is None:
                        first_s = chunk.elapsed_s
                    if chunk.logprob is not None:
                        self.logprobs.append((raw_chars, chunk.logprob))
                    raw_chars += len(chunk.text)
                    tokens += chunk.tokens
                    last_s = chunk.elapsed_s
                    if chunk.finish_reason:
                        finish = chunk.finish_reason
                    if guard is not None:
                        chunk = Chunk(guard.feed(chunk.text), chunk.tokens, chunk.elapsed_s, chunk.finish_reason)
                    parts.append(chunk.text)
                    writer.save_partial(self.message_id, "".join(parts), tokens)
                    yield chunk
                    if stop is not None and stop.is_set():
                        break
                ended = True
                if guard is not None:
                    rest = self._close_guard(guard, parts)
                    guard = None
                    if rest:
                        yield Chunk(rest, 0, last_s, finish)
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
                if guard is not None:  # stopped early: what was generated is checked whole all the same
                    self._close_guard(guard, parts)
                self._finish(writer, "".join(parts), tokens, first_s, last_s, finish, error)
        if ended and self.result is not None and not self.result.saved:
            raise StorageError(self._unsaved)

    def _close_guard(self, guard: Guard, parts: list[str]) -> str:
        """End the guard: the whole reply's outcome becomes what is stored (``parts``); returns what is left to
        show."""
        rest, outcome = guard.finish()
        self.privacy = outcome
        parts[:] = [outcome.text]
        return rest

    @staticmethod
    def _unsaved_sentence(writer: ReplyWriter, failure: StorageError) -> str:
        cause = cause_of(failure)
        if writer.kept is None:
            return f"The reply could not be saved because {cause}, and no copy could be kept; copy it from above."
        return (
            f"The reply could not be saved because {cause}; a copy was kept in {writer.kept} and will be stored "
            "the next time the assistant starts."
        )

    def _finish(
        self,
        writer: ReplyWriter,
        reply: str,
        tokens: int,
        first_s: float | None,
        last_s: float,
        finish: str,
        error: str | None,
    ) -> None:
        ttft_ms = round(first_s * 1000, 1) if first_s is not None else None
        decode_s = last_s - first_s if first_s is not None else 0.0
        tps = round((tokens - 1) / decode_s, 2) if tokens > 1 and decode_s > 0 else None
        complete = finish in ("stop", "length", "loop")
        if finish == "loop":
            self._add_notice(LOOP_NOTICE)
        assert self.message_id is not None
        failure = writer.save_final(
            self.message_id,
            {
                "content": reply,
                "completion_tokens": tokens,
                "ttft_ms": ttft_ms,
                "tokens_per_s": tps,
                "duration_ms": round(last_s * 1000, 1),
                "finish_reason": finish,
                "complete": int(complete),
                "error": error,
            },
        )
        self._unsaved = ""
        if failure is not None:
            self._unsaved = self._unsaved_sentence(writer, failure)
            self._add_notice(self._unsaved)
        self.result = result = TurnResult(
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
            saved=failure is None,
            adapter=self.adapter,
        )
        for step in self.setup.after_reply:
            try:
                step(self, result)
            except Exception as exc:  # a step never costs the reply
                name = getattr(step, "__name__", type(step).__name__)
                result.add_notice(f"An after-reply step ({name}) failed: {reason(exc)}.")
        self.notice = result.notice
