"""The `assistant` console script: the CLI, or the TUI when no command is given."""

from __future__ import annotations


def open_tui() -> None:
    from tui.app import run

    run()


def main() -> None:
    from assistant.cli import main as cli_main
    from assistant.cli import register

    # The learning job sits beside the TUI above the assistant package; its command is added from up here.
    register("learn", "learning.cli", "learn", "Learn from recent conversations (a LoRA adapter), now or nightly.")
    cli_main(open_tui=open_tui)
