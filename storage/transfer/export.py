"""Export: the assistant's own complete JSON (for a lossless round trip) and Markdown (for reading)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from storage.db import Store, now
from storage.records import Conversation, Message

FORMAT_NAME = "assistant-history"
FORMAT_VERSION = 1


def _selected(store: Store, conversation_id: int | None) -> list[Conversation]:
    if conversation_id is not None:
        return [store.get_conversation(conversation_id)]
    return sorted(store.list_conversations(), key=lambda c: c.id)


def message_record(message: Message) -> dict[str, Any]:
    """One message as exported: every stored field, feedback included (the conversation id is implied)."""
    record = message.to_dict()
    del record["conversation_id"]
    if record.get("checks"):  # the checker's verdict, stored as JSON text, exported as the object it is
        try:
            record["checks"] = json.loads(record["checks"])
        except ValueError:
            record["checks"] = None
    if record.get("tools"):  # the tool results, stored as JSON text, exported as the list they are
        try:
            record["tools"] = json.loads(record["tools"])
        except ValueError:
            record["tools"] = None
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
                "messages": [message_record(m) for m in store.messages(conversation.id, include_superseded=True)],
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
            if message.badge:
                head.append(f"checked: {message.badge}")
            lines += ["## " + " · ".join(head), "", message.content.rstrip() or "*(empty)*", ""]
            for item in message_record(message).get("tools") or []:
                if isinstance(item, dict):
                    said = item.get("content") if item.get("ok") else f"failed: {item.get('error')}"
                    lines += [f"> *Tool `{item.get('tool')}`: {' '.join(str(said).split())[:300]}*", ""]
            if note := incomplete_note(message):
                lines += [f"> *{note[0].upper()}{note[1:]}.*", ""]
            if message.better_answer:
                quoted = "\n".join(f"> {line}" for line in message.better_answer.splitlines())
                lines += ["> **Better answer:**", ">", quoted, ""]
        parts.append("\n".join(lines).rstrip() + "\n")
    return "\n---\n\n".join(parts)
