"""The loaded set of tools: built-ins, plugins and lazily started sources (MCP servers), called in isolation."""

from __future__ import annotations

import builtins
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from assistant.errors import AssistantError, InputError, NotFoundError
from assistant.plugins import PluginContext, PluginInfo, load_plugins
from assistant.tools.core import Tool, ToolResult, coerce_arguments, one_sentence, run_tool

if TYPE_CHECKING:
    import click

    from assistant.config.settings import Settings

Confirm = Callable[[Tool, dict[str, Any]], bool]


class ToolSource(Protocol):
    """A set of tools started lazily (an MCP server): ``tools()`` starts it on first call."""

    name: str

    def tools(self) -> builtins.list[Tool]:
        """The source's tools; raises AssistantError (one sentence) when it cannot start."""
        ...

    def close(self) -> None:
        """Stop the source (idempotent)."""
        ...


class Tools:
    """Every tool the assistant can call, by name; sources start the first time tools are listed or called."""

    def __init__(
        self,
        tools: Sequence[Tool] = (),
        plugins: Sequence[PluginInfo] = (),
        sources: Sequence[ToolSource] = (),
        commands: dict[str, click.Command] | None = None,
    ) -> None:
        self._tools: dict[str, Tool] = {t.name: t for t in tools}
        self._plugins: builtins.list[PluginInfo] = builtins.list(plugins)
        self._pending: builtins.list[ToolSource] = builtins.list(sources)
        self._started: builtins.list[ToolSource] = []
        self.commands: dict[str, click.Command] = dict(commands or {})

    def add_source(self, source: ToolSource) -> None:
        """A lazily started source (it starts when tools are next listed or an unknown name is asked for)."""
        self._pending.append(source)

    @property
    def failures(self) -> builtins.list[PluginInfo]:
        """Plugins and sources that failed (they are in ``plugins()`` too)."""
        return [info for info in self._plugins if info.status == "failed"]

    def plugins(self) -> builtins.list[PluginInfo]:
        """One line per plugin and source, loaded or not; starts the sources so their state is known."""
        self._start_sources()
        return builtins.list(self._plugins)

    def _start_sources(self) -> None:
        import time

        while self._pending:
            source = self._pending.pop(0)
            started = time.perf_counter()
            info = PluginInfo(source.name, "mcp", "loaded")
            try:
                found = builtins.list(source.tools())
                names = []
                for item in found:
                    if not isinstance(item, Tool):
                        raise TypeError(f"it gave a {type(item).__name__}, not a Tool")
                    if item.name in self._tools:
                        raise ValueError(f"a tool named {item.name} is already registered")
                    names.append(item.name)
                for item in found:
                    self._tools[item.name] = item
                info.tools = names
                self._started.append(source)
            except Exception as exc:  # a source that cannot start is reported, never raised into the chat
                info.status = "failed"
                detail = str(exc) if isinstance(exc, AssistantError) else f"{type(exc).__name__}: {exc}"
                info.error = one_sentence(f"The tool source {source.name} failed: {detail.rstrip('.')}.")
                try:
                    source.close()
                except Exception:
                    pass  # it never started; nothing more to say than the error above
            info.load_ms = (time.perf_counter() - started) * 1000
            self._plugins.append(info)

    def list(self) -> builtins.list[Tool]:
        """Every tool, sorted by name (starts lazy sources; a failing one becomes a failure, never an exception)."""
        self._start_sources()
        return sorted(self._tools.values(), key=lambda t: t.name)

    def names(self) -> builtins.list[str]:
        """The tools' names without starting any source (for completion while typing)."""
        return sorted(self._tools)

    def get(self, name: str) -> Tool:
        """The tool called ``name``; NotFoundError when there is none."""
        if name not in self._tools:
            self._start_sources()
        try:
            return self._tools[name]
        except KeyError:
            raise NotFoundError(f"There is no tool {name}; `assistant tools list` shows them.") from None

    def parse_pairs(self, name: str, pairs: Sequence[str]) -> dict[str, Any]:
        """``key=value`` words (the CLI's ``--arg``) as the tool's arguments, checked and converted."""
        tool = self.get(name)
        raw: dict[str, Any] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            key = key.strip()
            if not sep or not key:
                raise InputError(f"The argument '{pair}' is not key=value; give each as --arg key=value.")
            if key in raw:
                raise InputError(f"The parameter '{key}' is given twice; give it once.")
            raw[key] = value
        return coerce_arguments(tool, raw)

    def parse_text(self, name: str, text: str) -> dict[str, Any]:
        """What follows ``/tool NAME`` in a chat: ``key=value`` words (shell quoting), or, when the tool has exactly
        one required parameter and the text is not key=value words, the whole text as that parameter."""
        tool = self.get(name)
        text = text.strip()
        properties = tool.parameters.get("properties") or {}
        required = builtins.list(tool.parameters.get("required") or [])
        try:
            words = shlex.split(text)
        except ValueError:
            words = []
        as_pairs = bool(words) and all("=" in w and w.partition("=")[0].strip() in properties for w in words)
        if not text:
            return coerce_arguments(tool, {})
        if as_pairs:
            return self.parse_pairs(name, words)
        if len(required) == 1 or (not required and len(properties) == 1):
            key = required[0] if required else next(iter(properties))
            return coerce_arguments(tool, {key: text})
        if not words:
            raise InputError(f"The arguments '{text}' cannot be read; check the quotes.")
        return self.parse_pairs(name, words)

    def call(self, name: str, arguments: dict[str, Any], *, confirm: Confirm | None = None) -> ToolResult:
        """Check the arguments (InputError when malformed), ask for side effects, run the tool in isolation.

        A tool with side effects runs only when ``confirm`` is given and says yes. The tool's own failures
        (an exception, a hang past its timeout, an unusable result) come back as ``ok=False``, never raised.
        """
        tool = self.get(name)
        checked = coerce_arguments(tool, arguments)
        if tool.side_effects:
            try:
                agreed = confirm is not None and bool(confirm(tool, checked))
            except (EOFError, KeyboardInterrupt):
                agreed = False
            if not agreed:
                return ToolResult(
                    tool.name,
                    checked,
                    False,
                    "",
                    f"The tool {tool.name} changes things and was not confirmed, so it did not run.",
                    0.0,
                    tool.source,
                )
        return run_tool(tool, checked)

    def close(self) -> None:
        """Stop the sources that were started (MCP servers)."""
        while self._started:
            source = self._started.pop()
            try:
                source.close()
            except Exception:
                pass  # closing on the way out: a source that fails to stop must not hide the reply

    def __enter__(self) -> Tools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _mcp_sources(
    settings: Settings, home: Path, reserved: Callable[[], builtins.list[str]]
) -> tuple[builtins.list[ToolSource], builtins.list[PluginInfo]]:
    servers = getattr(settings, "mcp_servers", None) or {}
    if not servers:
        return [], []
    try:
        from assistant.tools.mcp import McpSource
    except Exception as exc:  # the MCP part missing or broken: every server is reported, the rest works
        error = one_sentence(f"MCP support could not be loaded: {type(exc).__name__}: {exc}")
        return [], [PluginInfo(f"mcp:{name}", "mcp", "failed", error=error) for name in servers]
    sources: builtins.list[ToolSource] = []
    failed: builtins.list[PluginInfo] = []
    for name, server in servers.items():
        try:
            sources.append(McpSource(name, server, home, reserved=reserved))
        except Exception as exc:
            failed.append(PluginInfo(f"mcp:{name}", "mcp", "failed", error=one_sentence(f"{exc}")))
    return sources, failed


def load_tools(
    settings: Settings,
    home: Path,
    *,
    entry_points: bool = True,
    reserved_commands: set[str] | frozenset[str] = frozenset(),
) -> Tools:
    """Built-ins, then installed plugins (each isolated), then MCP servers from the settings (started lazily)."""
    loaded = load_plugins(
        PluginContext(home=home, settings=settings), entry_points=entry_points, reserved_commands=reserved_commands
    )
    tools = Tools(loaded.tools, loaded.infos, (), loaded.commands)
    # A server's tool named like one already loaded gets the server's prefix (the source asks which names are taken).
    sources, failed = _mcp_sources(settings, home, tools.names)
    for source in sources:
        tools.add_source(source)
    tools._plugins += failed
    return tools


__all__ = ["Confirm", "ToolSource", "Tools", "load_tools"]
