"""Typed records read from the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Conversation:
    id: int
    title: str
    created_at: str
    updated_at: str
    model: str | None = None
    source: str = "chat"
    message_count: int = 0

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Conversation:
        return cls(**{k: row[k] for k in cls.__slots__ if k in row})


@dataclass(slots=True)
class Message:
    id: int
    conversation_id: int
    role: str
    content: str
    created_at: str
    model: str | None = None
    adapter: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    duration_ms: float | None = None
    finish_reason: str | None = None
    complete: bool = True
    error: str | None = None
    context_trimmed: bool = False
    rating: int | None = None
    better_answer: str | None = None
    superseded_by: int | None = None  # the message that replaced this one (regenerate, edit, retry)
    checks: str | None = None  # the checker's findings on a reply, JSON (assistant.checks.ReplyCheck.to_json)
    badge: str | None = None  # the checker's verdict: ok, check, unsupported or masked (None: not checked)
    tools: str | None = None  # tool results the reply rests on, JSON (a list of ToolResult.to_dict())

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Message:
        values = {k: row[k] for k in cls.__slots__ if k in row}
        values["complete"] = bool(values.get("complete", 1))
        values["context_trimmed"] = bool(values.get("context_trimmed", 0))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(slots=True)
class SearchHit:
    message_id: int
    conversation_id: int
    conversation_title: str
    role: str
    snippet: str
    created_at: str
    score: float
