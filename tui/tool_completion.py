"""Completion of `/tool NAME key=value` in the prompt: tool names, then the parameter names of the tool's schema.

The prompt (a TextArea) shows the completion as its ``suggestion``, the grey text after the cursor that Right or
Tab accepts. The tools are listed once, on the first `/tool` typed, in a thread worker: listing them loads the
plugins (and may start MCP servers), which neither the first frame nor a keystroke may wait for. Until the list
is in, nothing is suggested; when it arrives the prompt asks again.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.widgets import TextArea

COMMAND = "/tool"


@dataclass(frozen=True, slots=True)
class ToolEntry:
    """What completion needs of a tool: its name and parameter names (required ones first, in schema order)."""

    name: str
    parameters: tuple[str, ...] = ()


def entry_of(tool: Any) -> ToolEntry:
    """The entry of a Tool (anything with ``name`` and a JSON-schema ``parameters``)."""
    schema = tool.parameters if isinstance(tool.parameters, dict) else {}
    found = schema.get("properties")
    properties: dict[str, Any] = found if isinstance(found, dict) else {}
    required = [p for p in schema.get("required") or [] if p in properties]
    rest = [p for p in properties if p not in required]
    return ToolEntry(tool.name, tuple(required + rest))


def entries_of(tools: Iterable[Any]) -> list[ToolEntry]:
    return sorted((entry_of(t) for t in tools), key=lambda e: e.name)


def wants_tools(text: str) -> bool:
    """True once the prompt holds the start of a `/tool` command (time to list the tools)."""
    return text.startswith(COMMAND) and "\n" not in text


def complete(text: str, entries: Sequence[ToolEntry]) -> str:
    """What to add after ``text`` (the cursor at its end) to complete a tool name or a parameter name; '' if none.

    ``/tool calc`` gives ``ulate `` (names in alphabetical order: the first that fits), ``/tool calculate ``
    gives the first parameter not given yet, as ``expression=``; a value being typed gets nothing.
    """
    if not wants_tools(text) or not text.startswith(COMMAND + " "):
        return ""
    rest = text[len(COMMAND) + 1 :]
    if " " not in rest:
        matches = sorted(e.name for e in entries if e.name.startswith(rest) and e.name != rest)
        return matches[0][len(rest) :] + " " if matches else ""
    name, _, arguments = rest.partition(" ")
    entry = next((e for e in entries if e.name == name), None)
    if entry is None:
        return ""
    try:
        shlex.split(arguments)
    except ValueError:  # inside quotes: a value is being typed
        return ""
    words = arguments.split(" ")
    current = words[-1]
    if "=" in current:
        return ""
    given = {w.split("=", 1)[0] for w in words[:-1] if "=" in w}
    free_text = any(w and "=" not in w for w in words[:-1])  # the whole rest is the one required value
    if free_text:
        return ""
    for parameter in entry.parameters:
        if parameter not in given and parameter.startswith(current) and parameter != current:
            return parameter[len(current) :] + "="
    return ""


class ToolCompleter:
    """The tools' names and parameters for the prompt, listed once (off the UI thread) on the first `/tool`.

    ``load`` lists them (``session.tools.list()``, made into entries); ``on_error`` hears, once, why it failed.
    """

    def __init__(
        self, load: Callable[[], Sequence[ToolEntry]], on_error: Callable[[str], None] | None = None
    ) -> None:
        self._load = load
        self._on_error = on_error
        self._lock = threading.Lock()
        self._started = False
        self.entries: list[ToolEntry] | None = None  # None: not listed yet
        self.error: str | None = None

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries or []]

    def suggest(self, text: str, host: TextArea) -> str:
        """The completion for ``text`` now (listing the tools in the background the first time: '' meanwhile)."""
        if not wants_tools(text):
            return ""
        if self.entries is None:
            self.start(host)
            return ""
        return complete(text, self.entries)

    def start(self, host: TextArea) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True

        def work() -> None:
            entries: list[ToolEntry] = []
            try:
                entries = list(self._load())
            except Exception as exc:  # a failing plugin or source must never break typing
                self.error = str(exc) or type(exc).__name__
            self.entries = entries
            # call_later posts a message: thread-safe, and it never waits for the UI thread.
            host.call_later(self._loaded, host)

        host.run_worker(work, thread=True, group="tool-completion", exit_on_error=False)

    def _loaded(self, host: TextArea) -> None:
        if self.error and self._on_error is not None:
            self._on_error(self.error)
        host.update_suggestion()
