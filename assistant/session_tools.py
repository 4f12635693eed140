"""Tools as a chat session uses them: loaded on first use, `/tool NAME ...` typed in a chat, results kept.

``/tool NAME rest`` runs the tool without the model (like ``/remember``): its arguments are read and checked
before anything is stored, so a typo costs nothing; then the user's message is stored and the reply is the tool's
result, written by the assistant itself. The tool runs while that reply "streams" (the TUI's worker, the CLI's
stream), never while the message is being sent. Tool results, whoever called the tool, are stored with the reply
(``messages.tools``) and become sources for the grounding checker of that reply and of later ones.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import AssistantError, InputError, NotFoundError
from assistant.runtime.base import Chunk, GenerationParams

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.reply_check import Guard
    from assistant.tools.core import ToolResult
    from assistant.tools.registry import Confirm, Tools
    from assistant.turn import Turn, TurnResult
    from storage.records import Message

_COMMAND = re.compile(r"\A\s*/tool(?=\s|\Z)\s*(?P<name>\S+)?\s*(?P<rest>.*?)\s*\Z", re.IGNORECASE | re.DOTALL)


@dataclass(slots=True)
class ToolRequest:
    """`/tool NAME rest` read and checked: the tool's name and its arguments."""

    name: str
    arguments: dict[str, Any]


def is_tool_command(text: str) -> bool:
    return _COMMAND.match(text) is not None


class SessionTools:
    """The session's tools, loaded on first use (never on a turn that involves none) and closed with it."""

    def __init__(self, settings: Settings, home: Path) -> None:
        self.settings = settings
        self.home = home
        self._tools: Tools | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._tools is not None

    def get(self) -> Tools:
        with self._lock:
            if self._tools is None:
                from assistant.tools.registry import load_tools

                self._tools = load_tools(self.settings, self.home)
            return self._tools

    def close(self) -> None:
        with self._lock:
            tools, self._tools = self._tools, None
        if tools is not None:
            tools.close()

    def request(self, text: str) -> ToolRequest | None:
        """`/tool NAME rest` as a checked request (None: not a tool command); InputError, one sentence, when the
        tool is missing or unknown or its arguments cannot be read."""
        match = _COMMAND.match(text)
        if match is None:
            return None
        name, rest = match.group("name"), match.group("rest") or ""
        tools = self.get()
        if not name:
            raise InputError(f"Name a tool after /tool (`/tool NAME arguments`); {self._listing(tools)}")
        try:
            tools.get(name)
        except NotFoundError:
            raise InputError(f"There is no tool {name}; {self._listing(tools)}") from None
        return ToolRequest(name, tools.parse_text(name, rest))

    @staticmethod
    def _listing(tools: Tools) -> str:
        names = [t.name for t in tools.list()]
        return f"the tools are: {', '.join(names)}." if names else "no tools are installed."


class ToolReply:
    """A reply written by the assistant itself from a tool's result (`/tool NAME ...`); the tool runs when the
    reply streams, and its result goes into ``results`` (the turn's ``tools``)."""

    n_ctx = 0

    def __init__(self, tools: Tools, request: ToolRequest, confirm: Confirm | None) -> None:
        self.name = "assistant"
        self.tools = tools
        self.request = request
        self.confirm = confirm
        self.results: list[ToolResult] = []
        self.notices: list[str] = []  # the reply itself says what went wrong

    def count_tokens(self, text: str) -> int:
        return 0

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        return ""

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Chunk]:
        from assistant.tool_calls import ToolCall, run_call

        result = run_call(self.tools, ToolCall(self.request.name, self.request.arguments), self.confirm)
        self.results.append(result)
        if result.ok:
            text = result.content if result.content.strip() else f"The tool {result.tool} ran and returned nothing."
        else:
            text = result.error or f"The tool {result.tool} failed."
        yield Chunk(text, 0, result.seconds, "stop")

    def close(self) -> None:
        pass


def store_tool_results(turn: Turn, result: TurnResult) -> None:
    """After-reply step (before the checker): keep the turn's tool results with the reply, in ``result.tools``,
    and make them sources its reply is grounded in."""
    results: Sequence[ToolResult] = turn.tools
    if not results:
        return
    items = [_shown(r.to_dict(), turn.guard) for r in results]
    result.tools = items
    turn.sources.extend(r.content for r in results if r.ok and r.content.strip())
    for notice in getattr(turn.backend, "notices", ()):
        result.add_notice(notice)
    try:
        turn.setup.store.update_message(
            result.message_id, tools=json.dumps(items, ensure_ascii=False, separators=(",", ":"))
        )
    except AssistantError as exc:
        result.add_notice(f"The tool results could not be stored with the reply ({exc})")


def _shown(item: dict[str, Any], guard: Guard | None) -> dict[str, Any]:
    """A tool result as it may be kept and shown: under the reply's privacy policy, like the reply itself (a note
    or a server's answer may hold a card number or a secret the user never typed in this conversation). The model
    saw the whole result; what is stored, shown and exported is masked (``block``: withheld). No guard: privacy off."""
    content = item.get("content")
    if guard is None or not isinstance(content, str) or not content.strip():
        return item
    from assistant.checks.privacy import apply_policy, find_pii

    outcome = apply_policy(content, find_pii(content), guard.user_inputs, guard.policy)
    if not outcome.findings:
        return item
    masked = "[withheld: the result holds personal data or a secret]" if outcome.blocked else outcome.text
    return {**item, "content": masked}


def stored_results(messages: Sequence[Message]) -> list[str]:
    """The text of the tool results stored with a conversation's replies (sources for later replies)."""
    texts: list[str] = []
    for message in messages:
        if not message.tools:
            continue
        try:
            items = json.loads(message.tools)
        except ValueError:
            continue
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("ok") and isinstance(item.get("content"), str):
                if item["content"].strip():
                    texts.append(item["content"])
    return texts
