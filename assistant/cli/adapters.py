"""`assistant adapters`: the LoRA adapters that learning made: list, activate, rollback, remove.

Each acts on the model in use (the ``model`` setting, or ``--model``); an adapter trained on another model is listed
but never activated for this one. A running chat (the TUI, or the next `assistant chat`) picks up the change at its
next message. ``--json`` prints one object on stdout; sentences go to stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.output import emit_json, note, print_table
from assistant.errors import InputError

if TYPE_CHECKING:
    from storage.db import Store

_METRIC_ORDER = ("personal", "probe", "control", "perplexity", "ppl", "loss")


def parse_version(text: str) -> int:
    """``3`` or ``v3`` as an adapter version."""
    digits = text.strip().lower().removeprefix("v")
    if not digits.isdigit() or int(digits) < 1:
        raise InputError(f"'{text}' is not an adapter version; give its number, e.g. 3 or v3.")
    return int(digits)


def metrics_summary(metrics: dict[str, Any], limit: int = 4) -> str:
    """The key scores of a metrics record in one short cell (scores first, then other numbers)."""
    scalars = [(k, v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)]

    def rank(item: tuple[str, Any]) -> int:
        return next((i for i, word in enumerate(_METRIC_ORDER) if word in item[0].lower()), len(_METRIC_ORDER))

    chosen = sorted(scalars, key=rank)[:limit]
    return " ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in chosen)


@dataclass(slots=True)
class _Context:
    """The store, the data dir and the model a command acts for."""

    store: Store
    home: Path
    model: str
    models: Path

    def base_model(self) -> str:
        """The base model id of the model in use (what its adapters were trained on)."""
        from assistant.adapters import base_model_of
        from assistant.models import resolve

        spec = resolve(self.store, self.model, self.models)
        assert spec.path is not None
        return base_model_of(spec.name, spec.path)


@contextmanager
def _open(model: str | None) -> Iterator[_Context]:
    from assistant.app_store import open_store
    from assistant.config import data_dir, load_settings, models_dir

    home = data_dir()
    with open_store(home) as store:
        yield _Context(store, home, model or load_settings(home).model, models_dir(home))


_model_option = click.option("--model", "-m", metavar="NAME", help="Act for this model instead of the one in use.")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


@click.group()
def adapters() -> None:
    """The adapters that learning made: list, activate, rollback, remove."""


@adapters.command("list")
@_model_option
@_json_option
def list_command(model: str | None, as_json: bool) -> None:
    """Every adapter, newest first: version, base model, created, state, key scores; * marks the active one."""
    from assistant.adapters import adapter_rows, label
    from assistant.errors import AssistantError

    with _open(model) as ctx:
        try:
            base: str | None = ctx.base_model()
        except AssistantError as exc:  # a missing model must not hide the list
            base = None
            note(f"The adapters of the model in use cannot be told apart: {exc}")
        rows = adapter_rows(ctx.store, base or "", ctx.home)
    active = next((r for r in rows if r.current_base and r.adapter.state == "active"), None)
    if as_json:
        emit_json(
            {
                "model": ctx.model,
                "base_model": base,
                "active": label(active.adapter.version) if active else None,
                "adapters": [r.to_dict() for r in rows],
            }
        )
        return
    if not rows:
        note("No adapters yet: `assistant learn` makes one from your conversations.")
        return
    table = []
    for row in rows:
        a = row.adapter
        remarks = []
        if not row.current_base:
            remarks.append("other model")
        if a.state != "removed" and not row.file_present:
            remarks.append("file missing")
        table.append(
            [
                ("* " if a.state == "active" and row.current_base else "") + label(a.version),
                a.base_model,
                a.created_at[:16].replace("T", " "),
                a.state,
                metrics_summary(a.metrics),
                ", ".join(remarks),
            ]
        )
    print_table(["#version", "base model", "created", "state", "scores", "note"], table)
    if active is None:
        note(f"No adapter is active for {ctx.model}: the base model answers.")


@adapters.command()
@click.argument("version")
@_model_option
@_json_option
def activate(version: str, model: str | None, as_json: bool) -> None:
    """Answer with adapter VERSION (3 or v3) from the next message on."""
    from assistant.adapters import activate as do_activate
    from assistant.adapters import label

    number = parse_version(version)
    with _open(model) as ctx:
        adapter = do_activate(ctx.store, number, ctx.base_model(), ctx.home)
    if as_json:
        emit_json({"active": label(adapter.version), "adapter": adapter.to_dict()})
    else:
        note(f"Adapter {label(adapter.version)} is active for {ctx.model}; chats use it from their next message.")


@adapters.command()
@_model_option
@_json_option
def rollback(model: str | None, as_json: bool) -> None:
    """Go back to the adapter active before this one, or to the base model when there is none."""
    from assistant.adapters import label
    from assistant.adapters import rollback as do_rollback

    with _open(model) as ctx:
        before, now = do_rollback(ctx.store, ctx.base_model(), ctx.home)
    if as_json:
        emit_json(
            {
                "from": label(before.version) if before else None,
                "active": label(now.version) if now else None,
                "adapter": now.to_dict() if now else None,
            }
        )
        return
    if before is None:
        note(f"No adapter is active for {ctx.model}; the base model already answers.")
    elif now is None:
        note(f"Rolled back from {label(before.version)} to the base model (no earlier adapter can serve).")
    else:
        note(f"Rolled back from {label(before.version)} to {label(now.version)}.")


@adapters.command()
@click.argument("version")
@click.option("--force", is_flag=True, help="Remove it even if it is the active one (the base model then answers).")
@_json_option
def remove(version: str, force: bool, as_json: bool) -> None:
    """Delete adapter VERSION's file and mark it removed (the active one only with --force)."""
    from assistant.adapters import label
    from assistant.adapters import remove as do_remove
    from storage.adapters import get_adapter

    number = parse_version(version)
    with _open(None) as ctx:
        was_active = get_adapter(ctx.store, number).state == "active"
        adapter = do_remove(ctx.store, number, ctx.home, force=force)
    if as_json:
        emit_json({"removed": label(adapter.version), "was_active": was_active, "adapter": adapter.to_dict()})
        return
    said = f"Removed adapter {label(adapter.version)} (its file {Path(adapter.path).name} was deleted)."
    note(said + (" The base model answers now." if was_active else ""))
