"""`assistant learn`: run the learning job now, preview it, or manage its nightly schedule.

Registered by the launcher (``tui.launcher``), not by ``assistant.cli``: the assistant package never imports the
learning package. Sentences and progress go to stderr; ``--json`` prints one object on stdout.

Exit codes: 0 when the run finished (promoted, refused, or nothing new), else the error's code from
``storage.errors`` (input 2, model 3, storage 4, not found 5; another run holding the lock, or a stopped run, 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from assistant.cli.output import emit_json, note
from assistant.errors import InputError

_TRAIN_KEYS = ("epochs", "iters", "learning_rate", "rank", "alpha", "batch_size", "seed", "threads", "device")


def train_args(pairs: tuple[str, ...]) -> Any:
    """The job's training arguments with ``KEY=VALUE`` overrides."""
    from dataclasses import fields, replace

    from learning.job import default_args

    args = default_args()
    types = {f.name: f.type for f in fields(args)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in _TRAIN_KEYS:
            raise InputError(
                f"'{pair}' is not a training setting; use KEY=VALUE with KEY one of {', '.join(_TRAIN_KEYS)}."
            )
        kind = str(types[key])
        try:
            changes[key] = int(raw) if kind == "int" else float(raw) if kind == "float" else raw.strip()
        except ValueError:
            raise InputError(f"'{pair}': {key} takes a number.") from None
    return replace(args, **changes)


@contextmanager
def _progress(enabled: bool) -> Iterator[tuple[Any, Any]]:
    """A rich progress bar on stderr (the loss in its text) and a step announcer; silent when not shown."""
    if not enabled:
        yield (lambda p: None), (lambda s: None)
        return
    from rich.progress import TextColumn

    from assistant.cli.output import progress_bar

    with progress_bar(TextColumn("{task.fields[info]}")) as bar:
        task = bar.add_task("preparing", total=None, info="")

        def on_progress(p: Any) -> None:
            info = f"loss {p.loss:.3f}  {p.tokens_per_s:.0f} tok/s"
            bar.update(task, description="training", total=p.total_steps, completed=p.step, info=info)

        def on_step(name: str) -> None:
            if name != "training":
                bar.update(task, description=name, total=None, completed=0, info="")

        yield on_progress, on_step


@click.command()
@click.option(
    "--dry-run", is_flag=True, help="Show what would be learned (counts, samples, redactions); change nothing."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the run's report).")
@click.option("--install-schedule", is_flag=True, help="Run learning every night (a systemd timer, cron or launchd).")
@click.option("--at", default="03:00", show_default=True, metavar="HH:MM", help="When the nightly run starts.")
@click.option("--uninstall-schedule", is_flag=True, help="Remove the nightly run.")
@click.option("--status", "show_status", is_flag=True, help="The schedule, the last runs and the active adapter.")
@click.option(
    "--min-gain", type=float, default=0.0, show_default=True, metavar="SHARE",
    help="Promote only if the share of held-out questions about you answered rises by more than this (0-1).",
)  # fmt: skip
@click.option(
    "--train", "train_set", multiple=True, metavar="KEY=VALUE",
    help=f"Override a training setting for this run ({', '.join(_TRAIN_KEYS)}).",
)  # fmt: skip
def learn(
    dry_run: bool,
    as_json: bool,
    install_schedule: bool,
    at: str,
    uninstall_schedule: bool,
    show_status: bool,
    min_gain: float,
    train_set: tuple[str, ...],
) -> None:
    """Learn from your recent conversations: train an adapter, and use it only if it is better.

    Nothing leaves this computer. What it never learns: replies you rated down or the checker flagged, conversations
    you excluded, anything you made it forget, and personal data or secrets (redacted first).
    """
    if sum([install_schedule, uninstall_schedule, show_status]) > 1:
        raise InputError("Give one of --install-schedule, --uninstall-schedule and --status.")
    if install_schedule or uninstall_schedule:
        _schedule(install_schedule, at, as_json)
        return
    if show_status:
        _status(as_json)
        return
    if not 0 <= min_gain <= 1:
        raise InputError("--min-gain is a share between 0 and 1.")
    from learning.evaluate import Gate
    from learning.job import run

    args = train_args(train_set)
    import sys

    with _progress(not as_json and sys.stderr.isatty()) as (on_progress, on_step):
        try:
            report = run(dry_run=dry_run, args=args, gate=Gate(min_gain=min_gain), on_progress=on_progress,
                         on_step=on_step)  # fmt: skip
        except KeyboardInterrupt:
            note("Learning was stopped; the active adapter is unchanged and the next run starts over or resumes.")
            raise SystemExit(1) from None
    if as_json:
        emit_json(report.to_dict())
        return
    _say(report)


def _say(report: Any) -> None:
    from learning.report import terminal_plot

    if report.status == "dry":
        note(report.message)
        for name, count in sorted((report.selection or {}).items()):
            if name != "skipped" and count:
                note(f"  {name}: {count}")
        skipped = (report.selection or {}).get("skipped") or {}
        if skipped:
            note("  skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.items()))
        redaction = report.redaction or {}
        if redaction.get("replaced") or redaction.get("dropped"):
            replaced = ", ".join(f"{k} {v}" for k, v in redaction.get("replaced", {}).items()) or "none"
            note(f"  redacted: {replaced}; items dropped for holding secrets: {redaction.get('dropped_items', 0)}")
            for sample in redaction.get("samples", []):
                note(f"    {sample}")
        for sample in report.samples:
            note(f"  e.g. Q: {sample['user']}  A: {sample['assistant']}")
        return
    if report.losses:
        note(terminal_plot(report.losses))
    evaluation = report.evaluation or {}
    if evaluation:
        rows = [(n, evaluation.get(n)) for n in ("base", "current", "candidate")]
        for name, scores in rows:
            if scores:
                personal = "-" if scores["personal"] is None else f"{scores['personal']:.0%}"
                note(
                    f"  {name:<9} about you {personal:>4}  general {scores['controls']:.0%}  "
                    f"perplexity {scores['perplexity']:.2f}"
                )
    note(report.message)
    if report.files:
        note(f"Report: {report.files.get('report')}  Plot: {report.files.get('plot')}")


def _schedule(install: bool, at: str, as_json: bool) -> None:
    from learning import schedule

    if install:
        state = schedule.install(at)
        if as_json:
            emit_json(state.to_dict())
        else:
            note(f"Learning will run every night at {state.at} ({state.kind}).")
        return
    removed = schedule.uninstall()
    if as_json:
        emit_json({"removed": removed})
    else:
        note("Removed the nightly run." if removed else "There was no nightly run to remove.")


def _status(as_json: bool) -> None:
    from assistant.app_store import open_store
    from assistant.config import data_dir, load_settings, models_dir
    from learning import schedule
    from learning.lock import holder
    from storage.learning import list_runs

    home = data_dir()
    state = schedule.status()
    with open_store(home) as store:
        runs = list_runs(store, limit=5)
        active = _active(store, home, load_settings(home).model, models_dir(home))
    running = holder(home)
    if as_json:
        emit_json(
            {
                "schedule": state.to_dict(),
                "running": running is not None,
                "active_adapter": active,
                "runs": [
                    {k: v for k, v in r.to_dict().items() if k != "report"} | {"message": r.report.get("message")}
                    for r in runs
                ],
            }
        )
        return
    note(f"Nightly run: at {state.at} ({state.kind})." if state.installed else "Nightly run: not installed.")
    if running is not None:
        note("A learning run is in progress now.")
    note(f"Active adapter: {active}." if active else "Active adapter: none (the base model answers).")
    for r in runs:
        message = r.report.get("message") or r.report.get("error") or ""
        note(f"  run {r.id} {r.started_at[:16].replace('T', ' ')} {r.status}: {message}")
    if not runs:
        note("No learning runs yet.")


def _active(store: Any, home: Any, model: str, models: Any) -> str | None:
    from assistant.adapters import adapter_for
    from assistant.errors import AssistantError
    from assistant.models import resolve

    try:
        spec = resolve(store, model, models)
        assert spec.path is not None
        return adapter_for(store, spec.name, spec.path, home).version
    except AssistantError:
        return None
