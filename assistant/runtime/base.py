"""The backend protocol: every runtime streams small ``Chunk`` records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(slots=True)
class Chunk:
    """One piece of a streamed reply."""

    text: str
    tokens: int = 1  # tokens this chunk stands for
    elapsed_s: float = 0.0  # since the request started (prompt processing included)
    finish_reason: str | None = None  # "stop", "length" on the last chunk


@dataclass(slots=True)
class GenerationParams:
    max_tokens: int = 512
    temperature: float = 0.3
    top_p: float = 0.9
    seed: int = -1
    stop: list[str] = field(default_factory=list)


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
