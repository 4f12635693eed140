"""The `assistant` console script: the CLI, or the TUI when no command is given."""

from __future__ import annotations


def open_tui() -> None:
    from tui.app import run

    run()


def main() -> None:
    from assistant.cli import main as cli_main

    cli_main(open_tui=open_tui)
