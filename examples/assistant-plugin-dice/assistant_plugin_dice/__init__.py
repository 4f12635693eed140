"""An example plugin: one tool (`roll`) and one command (`assistant dice`)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import click

from assistant.plugins import PluginContext, hookimpl, tool


@tool
def roll(sides: int = 6, count: int = 1, seed: int | None = None) -> dict[str, Any]:
    """Roll dice and add them up.

    Args:
        sides: How many faces each die has (2 to 1000).
        count: How many dice to roll (1 to 100).
        seed: Make the roll repeatable.
    """
    if not 2 <= sides <= 1000 or not 1 <= count <= 100:
        raise ValueError("sides must be 2 to 1000 and count 1 to 100")
    rng = random.Random(seed)
    rolls = [rng.randint(1, sides) for _ in range(count)]
    return {"rolls": rolls, "total": sum(rolls)}


@hookimpl
def register_tools(register: Callable[..., None], context: PluginContext) -> None:
    """Register the plugin's tools (``context`` gives the data dir, the settings and the store, if needed)."""
    register(roll)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add `assistant dice`."""

    @cli.command()
    @click.option("--sides", default=6, show_default=True, help="Faces per die.")
    @click.option("--count", default=1, show_default=True, help="How many dice.")
    def dice(sides: int, count: int) -> None:
        """Roll dice from the command line."""
        result = roll(sides=sides, count=count)
        click.echo(f"{' + '.join(map(str, result['rolls']))} = {result['total']}")
