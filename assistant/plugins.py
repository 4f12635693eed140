"""The plugin API: pluggy hooks, found through the entry-point group ``assistant.plugins``.

A plugin is a module (or object) with ``@hookimpl`` functions::

    from assistant.plugins import hookimpl, tool

    @tool
    def roll(sides: int = 6) -> int:
        '''Roll a die.

        Args:
            sides: How many faces the die has.
        '''
        ...

    @hookimpl
    def register_tools(register, context):
        register(roll)

The built-in tools register through the same hook, as the plugin "builtin". Loading is lazy (when tools or plugin
commands are first needed, never at CLI or TUI start-up) and isolated: a plugin that fails to import, raises in a
hook or registers something unusable becomes a ``PluginInfo(status="failed")`` with one sentence, and the others
load as if it were not there.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from assistant.tools.core import Tool, ToolResult, make_tool, one_sentence, tool

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import click

    from assistant.config.settings import Settings
    from storage.db import Store

hookspec = pluggy.HookspecMarker("assistant")
hookimpl = pluggy.HookimplMarker("assistant")
ENTRY_POINT_GROUP = "assistant.plugins"
BUILTIN_MODULE = "assistant.tools.builtin"
BUILTIN_NAME = "builtin"


@dataclass(frozen=True, slots=True)
class PluginContext:
    """What a plugin may use when it registers its tools."""

    home: Path
    settings: Settings

    def open_store(self) -> AbstractContextManager[Store]:
        """The user's store (use it in a ``with`` block; it closes on leaving)."""
        from assistant.app_store import open_store

        return open_store(self.home)


class Spec:
    """The hooks a plugin may implement."""

    @hookspec
    def register_tools(self, register: Callable[[Tool | Callable[..., Any]], None], context: PluginContext) -> None:
        """Register tools: call ``register`` with each ``Tool`` (or typed function)."""

    @hookspec
    def register_commands(self, cli: click.Group) -> None:
        """Add click commands to ``cli``; they become ``assistant <name>`` (names of built-in commands are kept)."""


@dataclass(slots=True)
class PluginInfo:
    """One line of `assistant plugins list`."""

    name: str
    origin: str
    status: str  # "loaded" | "failed" | "disabled"
    tools: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    error: str | None = None
    load_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"load_ms": round(self.load_ms, 1)}


@dataclass(slots=True)
class LoadedPlugins:
    """Everything the plugins gave: tools (each with its source set), click commands, and a line per plugin."""

    tools: list[Tool] = field(default_factory=list)
    commands: dict[str, click.Command] = field(default_factory=dict)
    infos: list[PluginInfo] = field(default_factory=list)


@dataclass(slots=True)
class _Candidate:
    name: str
    origin: str
    load: Callable[[], Any]


def _sentence(exc: BaseException) -> str:
    detail = one_sentence(str(exc), 240).rstrip(".")
    kind = type(exc).__name__
    return f"{kind}: {detail}." if detail else f"{kind}."


def entry_point_candidates() -> Iterator[_Candidate]:
    """The installed plugins, without importing any (a scan of the installed packages' metadata)."""
    from importlib.metadata import entry_points

    seen: set[str] = set()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in seen or ep.name == BUILTIN_NAME:
            continue  # the same distribution twice on the path: the first one wins, as for imports
        seen.add(ep.name)
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else ep.value
        yield _Candidate(ep.name, origin, ep.load)


def _builtin_candidate() -> _Candidate | None:
    try:
        spec = importlib.util.find_spec(BUILTIN_MODULE)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None  # not there (a trimmed install): the assistant runs without built-in tools
    return _Candidate(BUILTIN_NAME, BUILTIN_NAME, lambda: importlib.import_module(BUILTIN_MODULE))


def _hook_impls(pm: pluggy.PluginManager, hook: str, plugin: Any) -> list[Any]:
    return [impl for impl in getattr(pm.hook, hook).get_hookimpls() if impl.plugin is plugin]


def _call(impl: Any, **kwargs: Any) -> Any:
    # A hookimpl may take any subset of the spec's arguments (pluggy's rule); call it alone, so a failure is its own.
    return impl.function(*[kwargs[name] for name in impl.argnames])


def _load_one(
    pm: pluggy.PluginManager,
    candidate: _Candidate,
    context: PluginContext,
    taken_tools: set[str],
    taken_commands: set[str],
    loaded: LoadedPlugins,
) -> None:
    import click

    info = PluginInfo(candidate.name, candidate.origin, "loaded")
    started = time.perf_counter()
    registered: list[Tool] = []
    commands: dict[str, click.Command] = {}
    plugin: Any = None
    try:
        try:
            plugin = candidate.load()
        except BaseException as exc:  # SystemExit from a plugin's import must not end the assistant
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise _PluginError(f"it failed to import: {_sentence(exc)}") from exc
        try:
            pm.register(plugin, name=candidate.name)
        except Exception as exc:
            raise _PluginError(f"its hooks are not valid: {_sentence(exc)}") from exc

        def register(obj: Tool | Callable[..., Any]) -> None:
            made = make_tool(obj) if not isinstance(obj, Tool) else obj
            made = dataclasses.replace(made, source=candidate.name)
            if made.name in taken_tools or any(t.name == made.name for t in registered):
                raise ValueError(f"a tool named {made.name} is already registered")
            registered.append(made)

        for impl in _hook_impls(pm, "register_tools", plugin):
            try:
                _call(impl, register=register, context=context)
            except (Exception, SystemExit) as exc:
                raise _PluginError(f"registering its tools failed: {_sentence(exc)}") from exc
        group = click.Group(name=candidate.name)
        for impl in _hook_impls(pm, "register_commands", plugin):
            try:
                _call(impl, cli=group)
            except (Exception, SystemExit) as exc:
                raise _PluginError(f"registering its commands failed: {_sentence(exc)}") from exc
        for name, command in group.commands.items():
            if name in taken_commands:
                raise _PluginError(f"its command '{name}' has the name of a command that already exists.")
            commands[name] = command
    except _PluginError as exc:
        info.status = "failed"
        info.error = f"The plugin {candidate.name} was skipped: {exc}"
        registered, commands = [], {}
        if plugin is not None and pm.is_registered(plugin):
            pm.unregister(plugin)
    info.load_ms = (time.perf_counter() - started) * 1000
    info.tools = [t.name for t in registered]
    info.commands = sorted(commands)
    taken_tools.update(info.tools)
    taken_commands.update(commands)
    loaded.tools += registered
    loaded.commands.update(commands)
    loaded.infos.append(info)


class _PluginError(Exception):
    pass


def load_plugins(
    context: PluginContext,
    *,
    entry_points: bool = True,
    builtin: bool = True,
    reserved_commands: set[str] | frozenset[str] = frozenset(),
    candidates: list[_Candidate] | None = None,
) -> LoadedPlugins:
    """Import the built-in tools and every installed plugin, each isolated; call their hooks.

    ``reserved_commands``: names a plugin command may not take (the assistant's own). Plugins named in the
    ``plugins_disabled`` setting are listed as disabled and never imported.
    """
    pm = pluggy.PluginManager("assistant")
    pm.add_hookspecs(Spec)
    disabled = set(getattr(context.settings, "plugins_disabled", None) or [])
    loaded = LoadedPlugins()
    taken_tools: set[str] = set()
    taken_commands: set[str] = set(reserved_commands)
    found: list[_Candidate] = []
    if builtin:
        candidate = _builtin_candidate()
        if candidate is not None:
            found.append(candidate)
    if candidates is not None:
        found += candidates
    elif entry_points:
        try:
            found += list(entry_point_candidates())
        except Exception as exc:  # a broken metadata file of some unrelated package
            loaded.infos.append(
                PluginInfo("(discovery)", "entry points", "failed", error=f"Finding plugins failed: {_sentence(exc)}")
            )
    for candidate in found:
        if candidate.name in disabled:
            loaded.infos.append(PluginInfo(candidate.name, candidate.origin, "disabled"))
            continue
        _load_one(pm, candidate, context, taken_tools, taken_commands, loaded)
    return loaded


__all__ = [
    "ENTRY_POINT_GROUP",
    "LoadedPlugins",
    "PluginContext",
    "PluginInfo",
    "Spec",
    "Tool",
    "ToolResult",
    "hookimpl",
    "hookspec",
    "load_plugins",
    "tool",
]
