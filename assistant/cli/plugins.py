"""`assistant plugins`: what loaded, what failed and why; and the commands that plugins add to `assistant`.

Plugins are imported only here and when tools are first needed, never when `assistant` starts: a command that is
not one of the assistant's own is looked up among the plugins' commands (``plugin_command``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from assistant.cli.output import emit_json, note, print_table
from assistant.errors import AssistantError

if TYPE_CHECKING:
    from pathlib import Path

    from assistant.config.settings import Settings
    from assistant.plugins import PluginInfo


def _infos() -> list[PluginInfo]:
    from assistant.cli.tools import open_tools

    with open_tools() as loaded:
        return loaded.plugins()


@click.group()
def plugins() -> None:
    """The installed plugins and tool sources: what loaded, what failed and why."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_plugins(as_json: bool) -> None:
    """One line per plugin (and MCP server): origin, status, tools, commands, load time, error."""
    infos = _infos()
    if as_json:
        emit_json({"plugins": [info.to_dict() for info in infos]})
        return
    if not infos:
        note("No plugins are installed.")
        return
    print_table(
        ("name", "origin", "status", "tools", "commands", "#load ms", "error"),
        (
            (
                i.name,
                i.origin,
                i.status,
                ", ".join(i.tools),
                ", ".join(i.commands),
                f"{i.load_ms:.1f}",
                i.error or "",
            )
            for i in infos
        ),
    )


def plugins_verdict(home: Path, settings: Settings | None) -> tuple[str, str, str]:
    """For `assistant doctor`: (status, detail, fix) about the plugins and tool sources."""
    from assistant.config import load_settings
    from assistant.tools.registry import load_tools

    settings = settings or load_settings(home)
    with load_tools(settings, home) as loaded:
        infos = loaded.plugins()
    loaded_ones = [f"{i.name} ({len(i.tools)} tools)" for i in infos if i.status == "loaded"]
    disabled = [i.name for i in infos if i.status == "disabled"]
    failed = [i for i in infos if i.status == "failed"]
    detail = "loaded: " + (", ".join(loaded_ones) or "none")
    if disabled:
        detail += "; disabled: " + ", ".join(disabled)
    if failed:
        detail += "; failed: " + " ".join(i.error or i.name for i in failed)
        fix = "Update or uninstall the failing plugins, or list them in the plugins_disabled setting."
        return "warn", detail, fix
    return "ok", detail, ""


def _isolated(command: click.Command, plugin: str) -> click.Command:
    """The plugin's command, with any crash of its own turned into one sentence (exit 1), never a traceback."""
    original = command.invoke

    def invoke(ctx: click.Context) -> Any:
        try:
            return original(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort, AssistantError, SystemExit):
            raise
        except Exception as exc:
            from assistant.tools.core import one_sentence

            raise AssistantError(
                one_sentence(f"The command {ctx.info_name} of the plugin {plugin} failed: {type(exc).__name__}: {exc}")
            ) from exc

    command.invoke = invoke  # type: ignore[method-assign]
    return command


def plugin_command(name: str, reserved: frozenset[str]) -> click.Command | None:
    """The command ``name`` from an installed plugin (imports the plugins), or None."""
    from assistant.config import data_dir, load_settings
    from assistant.plugins import PluginContext, load_plugins

    home = data_dir()
    try:
        settings = load_settings(home)
    except AssistantError:
        return None  # the settings' own error is reported by the commands that need them
    loaded = load_plugins(PluginContext(home, settings), reserved_commands=reserved)
    command = loaded.commands.get(name)
    if command is None:
        return None
    owner = next((i.name for i in loaded.infos if name in i.commands), "?")
    return _isolated(command, owner)
