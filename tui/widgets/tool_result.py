"""What a tool gave a reply: its name, ok or the error, the arguments and the content, shown under the reply.

The results come as ``ToolResult.to_dict()`` dicts: from the turn while it runs, or from ``messages.tools`` (a JSON
list) when a conversation is opened again, so one shape serves both and nothing here imports the tools package.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

SHOWN_CHARS = 2000  # a result is at most 4000 characters; half of it is plenty under a reply
SHOWN_ARGUMENT_CHARS = 60


def results_of(stored: object) -> list[dict[str, Any]]:
    """The tool results of a stored message (its ``tools`` column: a JSON list, already parsed or not).

    A value that is not a list of results (an older or damaged row) shows nothing rather than failing the
    conversation."""
    if isinstance(stored, str | bytes):
        try:
            stored = json.loads(stored)
        except ValueError:
            return []
    if not isinstance(stored, list):
        return []
    return [dict(item) for item in stored if isinstance(item, dict) and item.get("tool")]


def as_dict(result: object) -> dict[str, Any]:
    """A ToolResult (or its dict) as the dict this widget shows."""
    to_dict = getattr(result, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else dict(result)  # type: ignore[call-overload]


def arguments_text(arguments: object) -> str:
    """``key=value`` pairs, each value cut short: enough to see what the tool was asked."""
    if not isinstance(arguments, dict) or not arguments:
        return ""
    parts = []
    for key, value in arguments.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        shown = " ".join(str(shown).split())
        if len(shown) > SHOWN_ARGUMENT_CHARS:
            shown = shown[:SHOWN_ARGUMENT_CHARS].rstrip() + "…"
        parts.append(f"{key}={shown}")
    return " ".join(parts)


def header(result: dict[str, Any]) -> Text:
    """One line: the tool, where it comes from, ok or failed, how long it took, and its arguments."""
    ok = bool(result.get("ok"))
    text = Text()
    text.append("⚙ tool ", style="dim")
    text.append(str(result.get("tool", "?")), style="bold")
    source = result.get("source")
    if source and source != "builtin":
        text.append(f" · {source}", style="dim")
    text.append(" · ok" if ok else " · failed", style="green" if ok else "bold red")
    seconds = result.get("seconds")
    if isinstance(seconds, int | float) and seconds > 0:
        text.append(f" · {seconds * 1000:.0f} ms" if seconds < 1 else f" · {seconds:.1f} s", style="dim")
    arguments = arguments_text(result.get("arguments"))
    if arguments:
        text.append(f"  {arguments}", style="dim")
    return text


def body(result: dict[str, Any]) -> str:
    """The content (ok) or the one-sentence error (failed), cut to what fits under a reply."""
    if result.get("ok"):
        shown = str(result.get("content") or "")
    else:
        shown = str(result.get("error") or result.get("content") or "The tool failed.")
    if len(shown) > SHOWN_CHARS:
        shown = f"{shown[:SHOWN_CHARS].rstrip()}\n… ({len(shown) - SHOWN_CHARS:,} more characters)"
    return shown


class ToolResultView(Vertical):
    """One tool result in a reply; ``compact``: its header line only (the reply's text already is its content,
    as for `/tool NAME ...`, whose reply the tool itself wrote)."""

    def __init__(self, result: dict[str, Any], *, compact: bool = False) -> None:
        self.result = result
        self.compact = compact
        super().__init__(classes="tool-result" if result.get("ok") else "tool-result -failed")

    @property
    def ok(self) -> bool:
        return bool(self.result.get("ok"))

    @property
    def text(self) -> str:
        """What the result shows (tests and the copy key read it)."""
        return body(self.result)

    def compose(self) -> ComposeResult:
        yield Static(header(self.result), classes="tool-meta")
        if not self.compact:
            yield Static(Text(self.text), classes="tool-body")


def views_for(results: list[dict[str, Any]], reply_text: str) -> list[ToolResultView]:
    """The views of a reply's tool results: one whose content is the reply's whole text shows its header only."""
    return [ToolResultView(r, compact=body(r).strip() == reply_text.strip()) for r in results]
