"""Reading an import file: decode, tell the format, check it whole, then write it in one transaction."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from storage.db import Store
from storage.errors import InputError
from storage.transfer.chatgpt import chatgpt_conversation
from storage.transfer.checks import Invalid
from storage.transfer.export import FORMAT_NAME, FORMAT_VERSION
from storage.transfer.formats import minimal_conversation, own_conversation


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
    duplicates: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "conversations": len(self.conversation_ids),
            "messages": self.messages,
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "conversation_ids": self.conversation_ids,
        }


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
        conversations = [chatgpt_conversation(c, f"conversation {i}") for i, c in enumerate(data, 1)]
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
    reader = own_conversation if kind == "json" else minimal_conversation
    return ParsedImport(kind, [reader(c, f"conversation {i}") for i, c in enumerate(items, 1)])


def read_import(raw: bytes, name: str) -> ParsedImport:
    """``parse`` with problems turned into one sentence for the user."""
    try:
        return parse(raw)
    except Invalid as exc:
        raise InputError(f"Cannot import {name}: {exc}; nothing was imported.") from None


def import_parsed(store: Store, parsed: ParsedImport, on_progress: Callable[[int], None] | None = None) -> ImportResult:
    """Write checked conversations in one transaction."""
    written = store.import_conversations(parsed.conversations, on_progress=on_progress)
    ids = [i for i in written if i is not None]
    messages = sum(len(c["messages"]) for c, i in zip(parsed.conversations, written, strict=True) if i is not None)
    return ImportResult(parsed.format, ids, messages, parsed.skipped, duplicates=len(written) - len(ids))


def import_bytes(store: Store, raw: bytes, name: str) -> ImportResult:
    return import_parsed(store, read_import(raw, name))
