"""Reader for ChatGPT's ``conversations.json``: the visible branch of each conversation's message tree.

Each conversation's ``mapping`` holds nodes (``message``, ``parent``, ``children``); regenerated replies and edits
make branches, and the one on screen is the path from ``current_node`` back to the root. System and tool
messages, hidden ones, calls addressed to tools and non-text content (images, code, browsing) are left out.
"""

from __future__ import annotations

from typing import Any

from storage.db import now
from storage.transfer.checks import Invalid, epoch, finish, obj, text

ROLES = ("user", "assistant")
TEXT_TYPES = ("text", "multimodal_text")


def _visible_branch(mapping: dict[str, Any], current: Any, where: str) -> list[dict[str, Any]]:
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
        node = obj(mapping[key], f"{where}, node {key[:40]!r}")
        branch.append(node)
        key = node.get("parent")
    branch.reverse()
    return branch


def _visible_text(message: dict[str, Any], where: str) -> str:
    content = message.get("content")
    if not isinstance(content, dict) or content.get("content_type") not in TEXT_TYPES:
        return ""  # code, browsing results, thoughts, images only: not part of the visible text
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        raise Invalid(f"{where}: content.parts must be a list")
    texts = [text(p, where, "content") or "" for p in parts if isinstance(p, str)]
    return "\n".join(t for t in texts if t.strip()).strip()


def chatgpt_conversation(value: Any, where: str) -> dict[str, Any]:
    conv = obj(value, where)
    title = text(conv.get("title") or "", where, "title") or ""
    created = epoch(conv.get("create_time"), where)
    mapping = conv.get("mapping")
    if not isinstance(mapping, dict):
        raise Invalid(f"{where}: mapping must be an object")
    messages: list[dict[str, Any]] = []
    for node in _visible_branch(mapping, conv.get("current_node"), where):
        message = node.get("message")
        if message is None:
            continue
        at = f"{where}, node {str(node.get('id', '?'))[:40]!r}"
        message = obj(message, at)
        author = message.get("author")
        role = author.get("role") if isinstance(author, dict) else None
        if role not in ("system", "user", "assistant", "tool"):
            raise Invalid(f"{at}: author.role must be user, assistant, system or tool")
        found = message.get("metadata")
        metadata: dict[str, Any] = found if isinstance(found, dict) else {}
        if role not in ROLES or metadata.get("is_visually_hidden_from_conversation"):
            continue
        if message.get("recipient", "all") != "all":  # a call to a tool, not text for the user
            continue
        content = _visible_text(message, at)
        if not content:
            continue
        record: dict[str, Any] = {
            "role": role,
            "content": content,
            "created_at": epoch(message.get("create_time"), at) or created or now(),
        }
        if role == "assistant" and isinstance(metadata.get("model_slug"), str):
            record["model"] = metadata["model_slug"]
        messages.append(record)
    title, created, updated = finish(title, created, messages)
    model = conv.get("default_model_slug")
    return {
        "title": title,
        "created_at": created,
        "updated_at": updated,
        "model": model if isinstance(model, str) else None,
        "source": "import:chatgpt",
        "messages": messages,
    }
