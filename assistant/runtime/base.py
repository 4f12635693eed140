"""The backend protocol: every runtime streams small ``Chunk`` records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from assistant.config import Settings


@dataclass(slots=True)
class Chunk:
    """One piece of a streamed reply."""

    text: str
    tokens: int = 1  # tokens this chunk stands for
    elapsed_s: float = 0.0  # since the request started (prompt processing included)
    finish_reason: str | None = None  # "stop", "length" or "loop" (cut: it was repeating itself) on the last chunk
    logprob: float | None = None  # the model's log-probability of this chunk's least likely token, when asked for


@dataclass(slots=True)
class GenerationParams:
    max_tokens: int = 512
    temperature: float = 0.3
    top_p: float = 0.9
    seed: int = -1
    stop: list[str] = field(default_factory=list)
    # Repetition guards (see assistant.loops and docs/benchmarks.md for how the defaults were chosen).
    repeat_penalty: float = 1.15
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    cut_loops: bool = True  # stop a reply that still loops, with finish_reason "loop"
    logprobs: bool = False  # report each chunk's token log-probability (the checker's "unsure" spans)

    @classmethod
    def from_settings(cls, settings: Settings) -> GenerationParams:
        """The sampling settings of a chat turn."""
        return cls(
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            seed=settings.seed,
            repeat_penalty=settings.repeat_penalty,
            frequency_penalty=settings.frequency_penalty,
            presence_penalty=settings.presence_penalty,
            cut_loops=settings.cut_loops,
        )


@runtime_checkable
class Backend(Protocol):
    """A loaded local model that formats chats and streams completions."""

    name: str
    n_ctx: int

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` (no special tokens added)."""
        ...

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        """Render messages with the model's own chat template, ending with the assistant's turn."""
        ...

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Chunk]:
        """Stream the completion of ``prompt``; closing the iterator stops generation."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


@runtime_checkable
class SupportsAdapters(Protocol):
    """A backend that can swap LoRA adapters on the loaded model (llama.cpp can; the fake cannot)."""

    adapter_path: Path | None  # the adapter applied now; None: the base model alone
    adapter_version: str | None  # its label ("v3"), for the status bar and the stored reply

    def set_adapter(self, path: Path | None, version: str | None = None) -> float:
        """Apply ``path`` (None: no adapter) from the next decode on; seconds it took. A file that cannot be
        applied raises ModelError and leaves the base model serving."""
        ...


def partial_marker(text: str, markers: Iterable[str]) -> int:
    """How many characters at the end of streamed ``text`` may be the start of one of ``markers`` (the longest
    such start): held back until the next piece decides whether a marker comes."""
    hold = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), 0, -1):
            if text.endswith(marker[:size]):
                hold = max(hold, size)
                break
    return hold
