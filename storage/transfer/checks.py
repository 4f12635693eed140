"""Checks on the values of an import file; each problem is an ``Invalid`` naming where it is."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from storage.db import now, title_from


class Invalid(Exception):
    """A problem in an import file; the text says where and what (the caller adds the file name)."""


def text(value: Any, where: str, name: str, optional: bool = False) -> str | None:
    """Text that SQLite can store: a string, valid Unicode, no NUL bytes."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{where}: {name} must be text")
    if "\x00" in value:
        raise Invalid(f"{where}: {name} holds binary data (NUL bytes)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Invalid(f"{where}: {name} is not valid Unicode") from exc
    return value


def timestamp(value: Any, where: str, name: str, keep: bool = False) -> str:
    """Check an ISO 8601 time; return it as it was (``keep``) or as UTC ISO (naive times are taken as UTC)."""
    if not isinstance(value, str):
        raise Invalid(f"{where}: {name} must be an ISO 8601 time such as 2026-11-23T14:05:00Z")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"{where}: {name} {value[:40]!r} is not an ISO 8601 time") from None
    if keep:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def epoch(value: Any, where: str) -> str | None:
    """A Unix time in seconds (or None) as UTC ISO 8601."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(f"{where}: create_time must be a Unix time in seconds")
    try:
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        raise Invalid(f"{where}: create_time {value} is out of range") from None


def obj(value: Any, where: str) -> dict[str, Any]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise Invalid(f"{where} must be an object")
    return value


def messages_list(conv: dict[str, Any], where: str) -> list[Any]:
    """The ``messages`` list of a conversation (missing means none)."""
    messages = conv.get("messages", [])
    if not isinstance(messages, list):
        raise Invalid(f'{where}: "messages" must be a list')
    return messages


def finish(title: str, created_at: str | None, messages: list[dict[str, Any]]) -> tuple[str, str, str]:
    """Title (from the first user message if none), created_at and updated_at for a conversation."""
    stamps = [m["created_at"] for m in messages]
    created = created_at or (min(stamps) if stamps else now())
    updated = max([created, *stamps])
    if not title.strip():
        title = next((m["content"] for m in messages if m["role"] == "user"), "")
    return title_from(title), created, updated
