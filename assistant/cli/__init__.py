"""The `assistant` command line. Each subcommand's module is imported only when it runs, so `--help` is instant."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from assistant import __version__
from assistant.errors import AssistantError, InputError

SUBCOMMANDS = {
    "chat": ("assistant.cli.chat", "chat", "Send one message and stream the reply (reads stdin when piped)."),
    "history": ("assistant.cli.history", "history", "List, show, search, export, import and delete conversations."),
    "memory": ("assistant.cli.memory", "memory", "Remembered facts, memory search, index status and rebuild."),
    "models": ("assistant.cli.models", "models", "List, add, pull, use and remove models."),
    "doctor": ("assistant.cli.doctor", "doctor", "Check the install and say what to fix."),
    "check": ("assistant.cli.check", "check", "Check JSON Lines texts for personal data, secrets and grounding."),
    "adapters": ("assistant.cli.adapters", "adapters", "List, activate, roll back and remove learned adapters."),
    "tools": ("assistant.cli.tools", "tools", "List the tools (built-ins, plugins, MCP servers) and run one."),
    "plugins": ("assistant.cli.plugins", "plugins", "The installed plugins: what loaded, what failed and why."),
}


def register(name: str, module: str, attr: str, help_text: str) -> None:
    """Add a lazily imported subcommand from a package above this one (the launcher adds `learn`: the assistant
    package must not import the learning package)."""
    SUBCOMMANDS[name] = (module, attr, help_text)


def check_arguments(args: list[str]) -> None:
    """Refuse an argument that is not UTF-8 text, for every command at once, before anything is stored.

    Python hands such bytes over as lone surrogates, which SQLite and the model's tokenizer cannot encode: the
    command would fail half-way (a traceback, an empty conversation left behind).
    """
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise InputError(
                f"The argument '{shown}' is not valid UTF-8 text; give it in UTF-8 "
                "(text can also be piped on stdin; a file with such a name needs renaming)."
            ) from None


def warn_about_settings() -> None:
    """One line on stderr per ignored key of the settings file (pydantic is imported only when there is a file)."""
    from assistant.config import settings_file

    if not settings_file().exists():
        return
    from assistant.config.settings import settings_warnings

    for warning in settings_warnings():
        click.echo(f"Warning: {warning}", err=True)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*SUBCOMMANDS, *self.commands])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in SUBCOMMANDS:
            module, attr, _ = SUBCOMMANDS[name]
            return getattr(importlib.import_module(module), attr)
        known = super().get_command(ctx, name)
        if known is not None:
            return known
        # Not one of ours: perhaps a plugin's (plugins are imported only now, never for `--help` or our commands).
        from assistant.cli.plugins import plugin_command

        return plugin_command(name, frozenset(SUBCOMMANDS))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so listing commands imports none of them.
        rows = [(name, SUBCOMMANDS[name][2]) for name in sorted(SUBCOMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        formatter.write_paragraph()
        formatter.write_text("Plugins may add commands: `assistant plugins list` shows them.")

    def invoke(self, ctx: click.Context) -> Any:
        try:
            check_arguments([*ctx._protected_args, *ctx.args])
            if ctx._protected_args:
                warn_about_settings()
            return super().invoke(ctx)
        except AssistantError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="assistant")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """A private assistant that runs a small language model on this computer.

    With no command, `assistant` opens the terminal UI. Nothing leaves the machine.
    """
    if ctx.invoked_subcommand is None:
        # The TUI sits above this package (tui -> assistant); reach it through the launcher, not an import here.
        opener = (ctx.obj or {}).get("open_tui")
        if opener is None:
            click.echo(ctx.get_help())
            return
        opener()


def main(argv: list[str] | None = None, open_tui: Any = None) -> None:
    """Entry point: run the CLI, turning user-facing errors into one sentence and an exit code."""
    try:
        cli.main(args=argv, prog_name="assistant", obj={"open_tui": open_tui}, standalone_mode=True)
    except AssistantError as exc:  # raised outside a command's invoke (e.g. during option parsing callbacks)
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
