"""Readers for the assistant's own JSON export and the minimal format, checking every value."""

from __future__ import annotations

import json
from typing import Any

from storage.db import now
from storage.transfer.checks import Invalid, finish, messages_list, obj, text, timestamp

ROLES_OWN = ("system", "user", "assistant")
ROLES_MINIMAL = ("user", "assistant")

# The message fields of the own format, by type.
INT_FIELDS = ("prompt_tokens", "completion_tokens")
FLOAT_FIELDS = ("ttft_ms", "tokens_per_s", "duration_ms")
TEXT_FIELDS = ("model", "adapter", "finish_reason", "error")
BOOL_FIELDS = ("complete", "context_trimmed")
BADGES = ("ok", "check", "unsupported", "masked")  # as the messages table's CHECK constraint allows


def own_conversation(value: Any, where: str) -> dict[str, Any]:
    conv = obj(value, where)
    title = text(conv.get("title", ""), where, "title") or ""
    created = timestamp(conv["created_at"], where, "created_at", keep=True) if "created_at" in conv else None
    messages = [_own_message(m, f"{where}, message {i}") for i, m in enumerate(messages_list(conv, where), 1)]
    title, created, updated = finish(title, created, messages)
    if conv.get("updated_at") is not None:
        updated = timestamp(conv["updated_at"], where, "updated_at", keep=True)
    return {
        "title": title,
        "created_at": created,
        "updated_at": updated,
        "model": text(conv.get("model"), where, "model", optional=True),
        "source": "import:json",
        "messages": messages,
    }


def _own_message(value: Any, where: str) -> dict[str, Any]:
    msg = obj(value, where)
    role = msg.get("role")
    if role not in ROLES_OWN:
        raise Invalid(f"{where}: role must be system, user or assistant")
    record: dict[str, Any] = {
        "role": role,
        "content": text(msg.get("content"), where, "content"),
        "created_at": timestamp(msg.get("created_at"), where, "created_at", keep=True),
    }
    for name in TEXT_FIELDS:
        record[name] = text(msg.get(name), where, name, optional=True)
    for name in INT_FIELDS:
        number = msg.get(name)
        if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 0):
            raise Invalid(f"{where}: {name} must be a whole number of at least 0")
        record[name] = number
    for name in FLOAT_FIELDS:
        number = msg.get(name)
        if number is not None and (isinstance(number, bool) or not isinstance(number, int | float)):
            raise Invalid(f"{where}: {name} must be a number")
        record[name] = number
    for name in BOOL_FIELDS:
        flag = msg.get(name, name == "complete")
        if flag not in (True, False):  # 0 and 1 pass too
            raise Invalid(f"{where}: {name} must be true or false")
        record[name] = int(flag)
    rating = msg.get("rating")
    if rating not in (None, 1, -1) or isinstance(rating, bool):
        raise Invalid(f"{where}: rating must be 1, -1 or null")
    if rating is not None and role != "assistant":
        raise Invalid(f"{where}: only replies of the assistant can be rated")
    record["rating"] = rating
    record["better_answer"] = text(msg.get("better_answer"), where, "better_answer", optional=True)
    checks, badge = msg.get("checks"), msg.get("badge")
    if checks is not None or badge is not None:
        if role != "assistant" or not isinstance(checks, dict) or badge not in BADGES:
            raise Invalid(f"{where}: checks must be the checker's object and badge one of {', '.join(BADGES)}")
        record["checks"] = json.dumps(checks, ensure_ascii=False, separators=(",", ":"))
        record["badge"] = badge
    tools = msg.get("tools")
    if tools is not None:
        record["tools"] = tool_results(tools, where)
    # The exported ids only link a superseded message (regenerated, edited, retried) to its replacement.
    for name in ("id", "superseded_by"):
        value = msg.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            record[name] = value
    return record


def tool_results(value: Any, where: str) -> str:
    """A message's tool results (a list of ToolResult.to_dict()) as the JSON text stored, each checked."""
    if not isinstance(value, list):
        raise Invalid(f"{where}: tools must be a list of tool results")
    for i, item in enumerate(value, 1):
        ok = isinstance(item, dict) and isinstance(item.get("tool"), str) and isinstance(item.get("content"), str)
        if not ok or not isinstance(item.get("arguments", {}), dict) or item.get("ok") not in (True, False):
            raise Invalid(f"{where}: tool result {i} must have a tool name, arguments, ok and its content as text")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def minimal_conversation(value: Any, where: str) -> dict[str, Any]:
    conv = obj(value, where)
    title = text(conv.get("title", ""), where, "title") or ""
    created = timestamp(conv["created_at"], where, "created_at") if conv.get("created_at") is not None else None
    fallback = created or now()
    messages = []
    for i, value in enumerate(messages_list(conv, where), 1):
        at = f"{where}, message {i}"
        msg = obj(value, at)
        if msg.get("role") not in ROLES_MINIMAL:
            raise Invalid(f"{at}: role must be user or assistant")
        stamp = msg.get("created_at")
        messages.append(
            {
                "role": msg["role"],
                "content": text(msg.get("content"), at, "content"),
                "created_at": fallback if stamp is None else timestamp(stamp, at, "created_at"),
            }
        )
    title, created, updated = finish(title, created, messages)
    return {
        "title": title,
        "created_at": created,
        "updated_at": updated,
        "model": None,
        "source": "import:minimal",
        "messages": messages,
    }
