"""Export conversations (Markdown for reading, the assistant's own JSON for a lossless round trip) and import them.

Imports accept three shapes, told apart automatically:

* ``json``: the assistant's own export, ``{"format": "assistant-history", "version": 1, "conversations": [...]}``,
  carrying every message field (token counts, timings, finish reason, completeness, feedback);
* ``minimal``: ``{"conversations": [{"title": str, "messages": [{"role", "content", "created_at"}]}]}``;
* ``chatgpt``: ChatGPT's ``conversations.json``, a list of conversations whose messages form a tree in
  ``mapping``; the visible branch is the path from ``current_node`` back to the root.

The whole file is checked before anything is written, and then written in one transaction, so a bad file is refused
with one sentence that says where it is wrong and leaves the database as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from assistant.errors import InputError
from storage.db import Store, now, title_from
from storage.records import Conversation, Message

FORMAT_NAME = "assistant-history"
FORMAT_VERSION = 1
ROLES_OWN = ("system", "user", "assistant")
ROLES_MINIMAL = ("user", "assistant")
CHATGPT_TEXT_TYPES = ("text", "multimodal_text")

# The message fields of the own format, by type, for validation on import.
INT_FIELDS = ("prompt_tokens", "completion_tokens")
FLOAT_FIELDS = ("ttft_ms", "tokens_per_s", "duration_ms")
TEXT_FIELDS = ("model", "adapter", "finish_reason", "error")
BOOL_FIELDS = ("complete", "context_trimmed")


class Invalid(Exception):
    """A problem in an import file; the text says where and what (the caller adds the file name)."""


@dataclass(slots=True)
class ParsedImport:
    """Conversations read from a file and checked, ready for ``Store.import_conversations``."""

    format: str
    conversations: list[dict[str, Any]]
    skipped: int = 0

    @property
    def message_count(self) -> int:
        return sum(len(c["messages"]) for c in self.conversations)


@dataclass(slots=True)
class ImportResult:
    format: str
    conversation_ids: list[int] = field(default_factory=list)
    messages: int = 0
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "conversations": len(self.conversation_ids),
            "messages": self.messages,
            "skipped": self.skipped,
            "conversation_ids": self.conversation_ids,
        }


# -- export -------------------------------------------------------------------------------------------------


def _selected(store: Store, conversation_id: int | None) -> list[Conversation]:
    if conversation_id is not None:
        return [store.get_conversation(conversation_id)]
    return sorted(store.list_conversations(), key=lambda c: c.id)


def message_record(message: Message) -> dict[str, Any]:
    """One message as exported: every stored field, feedback included (the conversation id is implied)."""
    record = message.to_dict()
    del record["conversation_id"]
    return record


def export_data(store: Store, conversation_id: int | None = None) -> dict[str, Any]:
    """One conversation, or all of them (oldest first), in the assistant's own complete format."""
    conversations = []
    for conversation in _selected(store, conversation_id):
        conversations.append(
            {
                "id": conversation.id,
                "title": conversation.title,
                "created_at": conversation.created_at,
                "updated_at": conversation.updated_at,
                "model": conversation.model,
                "source": conversation.source,
                "messages": [message_record(m) for m in store.messages(conversation.id)],
            }
        )
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "exported_at": now(), "conversations": conversations}


def export_json(store: Store, conversation_id: int | None = None) -> str:
    return json.dumps(export_data(store, conversation_id), indent=2, ensure_ascii=False) + "\n"


def human_time(stamp: str | None, local: bool = False) -> str:
    """An ISO timestamp as ``2026-11-23 14:05`` (UTC, or local time); unparsable text is shown as it is."""
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if local:
        return moment.astimezone().strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def incomplete_note(message: Message) -> str | None:
    """Why a reply is incomplete (stopped, failed, cut at the length limit), or None if it is whole."""
    if not message.complete:
        reason = message.error or message.finish_reason or "stopped"
        return f"incomplete reply ({reason})"
    if message.finish_reason == "length":
        return "reply cut at the length limit"
    return None


def rating_label(rating: int | None) -> str | None:
    return {1: "rated good", -1: "rated bad"}.get(rating) if rating is not None else None


def export_markdown(store: Store, conversation_id: int | None = None) -> str:
    """One conversation, or all of them, as Markdown for reading."""
    parts = []
    for conversation in _selected(store, conversation_id):
        lines = [f"# {conversation.title or 'Untitled conversation'}", ""]
        about = [f"Conversation {conversation.id}", f"started {human_time(conversation.created_at)}"]
        if conversation.model:
            about.append(f"model {conversation.model}")
        if conversation.source != "chat":
            about.append(f"source {conversation.source}")
        lines += ["*" + " · ".join(about) + "*", ""]
        for message in store.messages(conversation.id):
            head = [{"user": "You", "assistant": "Assistant"}.get(message.role, message.role.title())]
            head.append(human_time(message.created_at))
            if message.role == "assistant" and message.model:
                head.append(message.model)
            if label := rating_label(message.rating):
                head.append(label)
            lines += ["## " + " · ".join(head), "", message.content.rstrip() or "*(empty)*", ""]
            if note := incomplete_note(message):
                lines += [f"> *{note[0].upper()}{note[1:]}.*", ""]
            if message.better_answer:
                quoted = "\n".join(f"> {line}" for line in message.better_answer.splitlines())
                lines += ["> **Better answer:**", ">", quoted, ""]
        parts.append("\n".join(lines).rstrip() + "\n")
    return "\n---\n\n".join(parts)


# -- reading a file -----------------------------------------------------------------------------------------


def decode(raw: bytes) -> Any:
    """Bytes to JSON, refusing empty, binary and non-UTF-8 input."""
    if not raw.strip():
        raise Invalid("it is empty")
    if b"\x00" in raw:  # JSON text never holds a raw NUL
        raise Invalid("it holds binary data, not JSON text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"it is not UTF-8 text (bad byte at offset {exc.start})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Invalid(f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    except RecursionError as exc:
        raise Invalid("its JSON is nested too deeply") from exc


def detect(data: Any) -> str:
    """Which of the known shapes ``data`` has: json, minimal or chatgpt."""
    if isinstance(data, dict):
        if "format" in data:
            if data["format"] != FORMAT_NAME:
                raise Invalid(f'"format" is {data["format"]!r}, not {FORMAT_NAME!r}')
            return "json"
        if "conversations" in data:
            return "minimal"
    if isinstance(data, list) and all(isinstance(c, dict) and "mapping" in c for c in data):
        return "chatgpt"
    raise Invalid(
        "it is not a known conversation export (expected this assistant's JSON export, "
        '{"conversations": [...]}, or ChatGPT\'s conversations.json)'
    )


def parse(raw: bytes) -> ParsedImport:
    """Decode, detect and check a whole file; raise ``Invalid`` at the first problem."""
    data = decode(raw)
    kind = detect(data)
    if kind == "chatgpt":
        conversations = [_chatgpt_conversation(c, f"conversation {i}") for i, c in enumerate(data, 1)]
        kept = [c for c in conversations if c["messages"]]
        return ParsedImport(kind, kept, skipped=len(conversations) - len(kept))
    if kind == "json":
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise Invalid('"version" must be a whole number')
        if version > FORMAT_VERSION:
            raise Invalid(f"it was written by a newer assistant (format version {version}); update this one")
    items = data["conversations"]
    if not isinstance(items, list):
        raise Invalid('"conversations" must be a list')
    reader = _own_conversation if kind == "json" else _minimal_conversation
    return ParsedImport(kind, [reader(c, f"conversation {i}") for i, c in enumerate(items, 1)])


def read_import(raw: bytes, name: str) -> ParsedImport:
    """``parse`` with problems turned into one sentence for the user."""
    try:
        return parse(raw)
    except Invalid as exc:
        raise InputError(f"Cannot import {name}: {exc}; nothing was imported.") from None


def import_parsed(
    store: Store, parsed: ParsedImport, on_progress: Callable[[int], None] | None = None
) -> ImportResult:
    """Write checked conversations in one transaction."""
    ids = store.import_conversations(parsed.conversations, on_progress=on_progress)
    return ImportResult(parsed.format, ids, parsed.message_count, parsed.skipped)


def import_bytes(store: Store, raw: bytes, name: str) -> ImportResult:
    return import_parsed(store, read_import(raw, name))


# -- checking values ----------------------------------------------------------------------------------------


def _text(value: Any, where: str, name: str, optional: bool = False) -> str | None:
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


def _timestamp(value: Any, where: str, name: str, keep: bool = False) -> str:
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


def _epoch(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(f"{where}: create_time must be a Unix time in seconds")
    try:
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        raise Invalid(f"{where}: create_time {value} is out of range") from None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{where} must be an object")
    return value


def _messages_list(conv: dict[str, Any], where: str) -> list[Any]:
    messages = conv.get("messages", [])
    if not isinstance(messages, list):
        raise Invalid(f'{where}: "messages" must be a list')
    return messages


def _finish(title: str, created_at: str | None, messages: list[dict[str, Any]]) -> tuple[str, str, str]:
    """Title (from the first user message if none), created_at and updated_at for a conversation."""
    stamps = [m["created_at"] for m in messages]
    created = created_at or (min(stamps) if stamps else now())
    updated = max([created, *stamps])
    if not title.strip():
        title = next((m["content"] for m in messages if m["role"] == "user"), "")
    return title_from(title), created, updated


# -- the three formats --------------------------------------------------------------------------------------


def _own_conversation(value: Any, where: str) -> dict[str, Any]:
    conv = _object(value, where)
    title = _text(conv.get("title", ""), where, "title") or ""
    created = _timestamp(conv["created_at"], where, "created_at", keep=True) if "created_at" in conv else None
    messages = [_own_message(m, f"{where}, message {i}") for i, m in enumerate(_messages_list(conv, where), 1)]
    title, created, updated = _finish(title, created, messages)
    if conv.get("updated_at") is not None:
        updated = _timestamp(conv["updated_at"], where, "updated_at", keep=True)
    return {
        "title": title,
        "created_at": created,
        "updated_at": updated,
        "model": _text(conv.get("model"), where, "model", optional=True),
        "source": "import:json",
        "messages": messages,
    }


def _own_message(value: Any, where: str) -> dict[str, Any]:
    msg = _object(value, where)
    role = msg.get("role")
    if role not in ROLES_OWN:
        raise Invalid(f"{where}: role must be system, user or assistant")
    record: dict[str, Any] = {
        "role": role,
        "content": _text(msg.get("content"), where, "content"),
        "created_at": _timestamp(msg.get("created_at"), where, "created_at", keep=True),
    }
    for name in TEXT_FIELDS:
        record[name] = _text(msg.get(name), where, name, optional=True)
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
    record["better_answer"] = _text(msg.get("better_answer"), where, "better_answer", optional=True)
    return record


def _minimal_conversation(value: Any, where: str) -> dict[str, Any]:
    conv = _object(value, where)
    title = _text(conv.get("title", ""), where, "title") or ""
    created = _timestamp(conv["created_at"], where, "created_at") if conv.get("created_at") is not None else None
    fallback = created or now()
    messages = []
    for i, value in enumerate(_messages_list(conv, where), 1):
        at = f"{where}, message {i}"
        msg = _object(value, at)
        if msg.get("role") not in ROLES_MINIMAL:
            raise Invalid(f"{at}: role must be user or assistant")
        stamp = msg.get("created_at")
        messages.append(
            {
                "role": msg["role"],
                "content": _text(msg.get("content"), at, "content"),
                "created_at": fallback if stamp is None else _timestamp(stamp, at, "created_at"),
            }
        )
    title, created, updated = _finish(title, created, messages)
    return {
        "title": title,
        "created_at": created,
        "updated_at": updated,
        "model": None,
        "source": "import:minimal",
        "messages": messages,
    }


def _chatgpt_branch(mapping: dict[str, Any], current: Any, where: str) -> list[dict[str, Any]]:
    """The nodes of the visible branch, root first: from ``current_node`` back through the parents."""
    if current is None:
        # Old exports may lack current_node: take the last leaf in the file.
        leaves = [key for key, node in mapping.items() if isinstance(node, dict) and not node.get("children")]
        if not leaves:
            return []
        current = leaves[-1]
    if not isinstance(current, str) or current not in mapping:
        raise Invalid(f"{where}: current_node {str(current)[:40]!r} is not in mapping")
    branch: list[dict[str, Any]] = []
    seen: set[str] = set()
    key: Any = current
    while key is not None:
        if not isinstance(key, str) or key not in mapping:
            raise Invalid(f"{where}: node parent {str(key)[:40]!r} is not in mapping")
        if key in seen:
            raise Invalid(f"{where}: the parents of node {key[:40]!r} form a loop")
        seen.add(key)
        node = _object(mapping[key], f"{where}, node {key[:40]!r}")
        branch.append(node)
        key = node.get("parent")
    branch.reverse()
    return branch


def _chatgpt_text(message: dict[str, Any], where: str) -> str:
    content = message.get("content")
    if not isinstance(content, dict) or content.get("content_type") not in CHATGPT_TEXT_TYPES:
        return ""  # code, browsing results, thoughts, images only: not part of the visible text
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        raise Invalid(f"{where}: content.parts must be a list")
    texts = [_text(p, where, "content") or "" for p in parts if isinstance(p, str)]
    return "\n".join(t for t in texts if t.strip()).strip()


def _chatgpt_conversation(value: Any, where: str) -> dict[str, Any]:
    conv = _object(value, where)
    title = _text(conv.get("title") or "", where, "title") or ""
    created = _epoch(conv.get("create_time"), where)
    mapping = conv.get("mapping")
    if not isinstance(mapping, dict):
        raise Invalid(f"{where}: mapping must be an object")
    messages: list[dict[str, Any]] = []
    for node in _chatgpt_branch(mapping, conv.get("current_node"), where):
        message = node.get("message")
        if message is None:
            continue
        at = f"{where}, node {str(node.get('id', '?'))[:40]!r}"
        message = _object(message, at)
        author = message.get("author")
        role = author.get("role") if isinstance(author, dict) else None
        if role not in ("system", "user", "assistant", "tool"):
            raise Invalid(f"{at}: author.role must be user, assistant, system or tool")
        metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
        if role not in ROLES_MINIMAL or metadata.get("is_visually_hidden_from_conversation"):
            continue
        if message.get("recipient", "all") != "all":  # a call to a tool, not text for the user
            continue
        text = _chatgpt_text(message, at)
        if not text:
            continue
        record: dict[str, Any] = {
            "role": role,
            "content": text,
            "created_at": _epoch(message.get("create_time"), at) or created or now(),
        }
        if role == "assistant" and isinstance(metadata.get("model_slug"), str):
            record["model"] = metadata["model_slug"]
        messages.append(record)
    title, created, updated = _finish(title, created, messages)
    model = conv.get("default_model_slug")
    return {
        "title": title,
        "created_at": created,
        "updated_at": updated,
        "model": model if isinstance(model, str) else None,
        "source": "import:chatgpt",
        "messages": messages,
    }
