"""`assistant tools`: list the tools (built-ins, plugins, MCP servers) and run one by hand.

``tools run NAME --arg key=value ...`` checks the arguments against the tool's schema (a malformed one: one sentence,
exit 2). A tool with side effects asks first on a terminal; elsewhere it runs only with ``--yes``. A tool that fails
(raises, hangs past its timeout, returns something unusable) prints one sentence and exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.output import emit_json, note, print_table
from assistant.errors import AssistantError, InputError

if TYPE_CHECKING:
    from assistant.tools.core import Tool
    from assistant.tools.registry import Tools

_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


@contextmanager
def open_tools() -> Iterator[Tools]:
    """The tools for this data dir and settings, stopped (MCP servers) on leaving."""
    from assistant.cli import SUBCOMMANDS
    from assistant.config import data_dir, load_settings
    from assistant.tools.registry import load_tools

    home = data_dir()
    tools = load_tools(load_settings(home), home, reserved_commands=frozenset(SUBCOMMANDS))
    try:
        yield tools
    finally:
        tools.close()


def parameters_summary(tool: Tool) -> str:
    """``name: type`` per parameter, required ones first, optional ones in brackets, for a table cell."""
    properties: dict[str, Any] = tool.parameters.get("properties") or {}
    required = set(tool.parameters.get("required") or [])

    def kind(schema: dict[str, Any]) -> str:
        if "enum" in schema:
            return "|".join(str(v) for v in schema["enum"])
        if "anyOf" in schema:
            return "|".join(kind(s) for s in schema["anyOf"] if s.get("type") != "null") + "?"
        if schema.get("type") == "array":
            return f"list[{kind(schema.get('items') or {})}]"
        return str(schema.get("type", "any"))

    needed = [f"{name}: {kind(schema or {})}" for name, schema in properties.items() if name in required]
    optional = [f"[{name}: {kind(schema or {})}]" for name, schema in properties.items() if name not in required]
    return ", ".join(needed + optional)


def tool_dict(tool: Tool) -> dict[str, Any]:
    return {
        "name": tool.name,
        "source": tool.source,
        "side_effects": tool.side_effects,
        "timeout": tool.timeout,
        "description": tool.description,
        "parameters": tool.parameters,
    }


@click.group()
def tools() -> None:
    """List the tools and run one (`assistant tools run NAME --arg key=value`)."""


@tools.command("list")
@_json_option
def list_tools(as_json: bool) -> None:
    """The tools the assistant and you can call, with where each comes from."""
    with open_tools() as loaded:
        found = loaded.list()
        failures = loaded.failures
    if as_json:
        emit_json({"tools": [tool_dict(t) for t in found], "failures": [f.to_dict() for f in failures]})
        return
    if not found:
        note("No tools are available.")
    else:
        print_table(
            ("name", "source", "side effects", "description", "parameters"),
            ((t.name, t.source, "yes" if t.side_effects else "", t.description, parameters_summary(t)) for t in found),
        )
    for failure in failures:
        note(f"Warning: {failure.error}")


@tools.command("run")
@click.argument("name")
@click.option("--arg", "-a", "pairs", multiple=True, metavar="KEY=VALUE", help="One argument (repeat for more).")
@click.option("--yes", "-y", is_flag=True, help="Run a tool with side effects without asking.")
@_json_option
def run(name: str, pairs: tuple[str, ...], yes: bool, as_json: bool) -> None:
    """Run the tool NAME with --arg key=value arguments and print its result."""
    declined: list[bool] = []

    def ask(tool: Tool, arguments: dict[str, Any]) -> bool:
        shown = " ".join(f"{k}={v!r}" for k, v in arguments.items())
        agreed = click.confirm(f"Run {tool.name} {shown}? It changes things".strip(), default=False, err=True)
        declined.append(not agreed)
        return agreed

    with open_tools() as loaded:
        tool = loaded.get(name)
        arguments = loaded.parse_pairs(name, pairs)
        confirm = None
        if tool.side_effects:
            if yes:
                confirm = _yes
            elif sys.stdin.isatty() and not as_json:
                confirm = ask
            else:
                raise InputError(
                    f"The tool {name} changes things and needs confirmation; add --yes to run it "
                    "(stdin is not a terminal to ask on)."
                )
        result = loaded.call(name, arguments, confirm=confirm)
    if any(declined):
        raise InputError(f"The tool {name} did not run: not confirmed.")
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        click.echo(result.content)
    if not result.ok:
        if not as_json:
            note(f"Error: {result.error}")
        sys.exit(AssistantError.exit_code)


def _yes(tool: Tool, arguments: dict[str, Any]) -> bool:
    return True
