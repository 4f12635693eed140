"""Past learning runs as the TUI's Learning screen shows them: one row per run, and the scores over time.

Read from ``learning_runs`` (each run's report JSON, as ``learning.job`` writes it). The TUI reads runs through
here, as the CLI's ``learn --status`` does, rather than reaching into ``storage`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.learning import LearningRun, list_runs

if TYPE_CHECKING:
    from storage.db import Store

SELECTED = ("statements", "facts", "pairs")  # what a run counts as selected (better answers are among the pairs)


@dataclass(slots=True, frozen=True)
class RunRow:
    """One past run, with what the screen shows of it."""

    id: int
    started_at: str
    status: str
    selected: int  # statements, facts and rated pairs selected
    probe: float | None  # the candidate's share of held-out questions about the user answered
    control: float | None  # the candidate's share of general control questions kept
    base_probe: float | None
    base_control: float | None
    adapter_version: int | None
    reason: str  # the run's sentence: why it was promoted or refused, or what went wrong
    seconds: float | None  # started to finished
    losses: tuple[float, ...] = ()  # the training loss per step

    @property
    def scored(self) -> bool:
        """A run that evaluated a candidate (promoted or refused) has scores to plot."""
        return self.status in ("promoted", "refused") and (self.probe is not None or self.control is not None)


def _share(scores: Any, key: str) -> float | None:
    value = scores.get(key) if isinstance(scores, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _seconds(started: str, finished: str | None) -> float | None:
    if not finished:
        return None
    try:
        return max(0.0, (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds())
    except ValueError:
        return None


def row(run: LearningRun) -> RunRow:
    report = run.report or {}
    selection = report.get("selection") or {}
    evaluation = report.get("evaluation") or {}
    candidate, base = evaluation.get("candidate") or {}, evaluation.get("base") or {}
    reason = str(report.get("message") or report.get("error") or "")
    if run.status == "running":
        reason = reason or "In progress (or stopped without a word: the next run marks it failed)."
    return RunRow(
        id=run.id,
        started_at=run.started_at,
        status=run.status,
        selected=sum(int(selection.get(k) or 0) for k in SELECTED),
        probe=_share(candidate, "personal"),
        control=_share(candidate, "controls"),
        base_probe=_share(base, "personal"),
        base_control=_share(base, "controls"),
        adapter_version=run.adapter_version,
        reason=reason,
        seconds=_seconds(run.started_at, run.finished_at),
        losses=tuple(float(x) for x in report.get("losses") or () if isinstance(x, int | float)),
    )


def runs(store: Store, limit: int | None = 50) -> list[RunRow]:
    """The latest runs, newest first."""
    return [row(r) for r in list_runs(store, limit=limit)]


def score_series(rows: list[RunRow]) -> tuple[list[float], list[float]]:
    """Probe and control accuracy of the scored runs, oldest first (a missing score counts as 0)."""
    scored = [r for r in reversed(rows) if r.scored]
    return [r.probe or 0.0 for r in scored], [r.control or 0.0 for r in scored]
