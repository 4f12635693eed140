"""The learning job's records: the per-conversation toggle, learning runs with their watermarks, and the reads its
selection makes (migration m007). Plain functions over the ``Store``. Adapters are in ``storage.adapters`` (their
names are importable from here too).

Watermarks: a run records the highest message, fact and forgotten-record ids it selected up to. Ids are never
reused (m004) and a writer's new id is above every committed one, so "id above the watermark" is exactly what is
new, imported history included, whatever its timestamps say. Replies are learned through their feedback (a
thumbs-up, a better answer), so a reply is new when its feedback changed in the window ``(previous feedback
watermark, this one]``, whatever the reply's age; the window ends :data:`FEEDBACK_SETTLE_S` seconds before the
selection, so a feedback write still waiting on a lock is not passed over. The next run starts from the watermarks
of the latest *completed* run (promoted, refused or nothing): a failed or dry run selected nothing for good.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from storage.adapters import (
    ADAPTER_STATES,
    Adapter,
    AdapterState,
    ItemKind,
    active_adapter,
    adapter_items,
    adapters_containing,
    add_adapter,
    base_model_id,
    file_fingerprint,
    get_adapter,
    list_adapters,
    set_active,
    set_adapter_metrics,
    set_adapter_state,
)
from storage.db import Store, now
from storage.errors import InputError, NotFoundError

__all__ = [
    "ADAPTER_STATES",
    "COMPLETED",
    "FEEDBACK_SETTLE_S",
    "RUN_STATUSES",
    "Adapter",
    "AdapterState",
    "ItemKind",
    "LearningRun",
    "RunStatus",
    "Watermarks",
    "active_adapter",
    "adapter_items",
    "adapters_containing",
    "add_adapter",
    "base_model_id",
    "conversation_learns",
    "current_watermarks",
    "endorsed_replies",
    "facts_between",
    "file_fingerprint",
    "finish_run",
    "get_adapter",
    "get_run",
    "last_successful_run",
    "learning_candidates",
    "list_adapters",
    "list_runs",
    "live_sources",
    "mark_interrupted",
    "prompt_of",
    "set_active",
    "set_adapter_metrics",
    "set_adapter_state",
    "set_conversation_learn",
    "snapshot",
    "start_run",
]

RunStatus = Literal["running", "promoted", "refused", "failed", "nothing", "dry"]
RUN_STATUSES: tuple[str, ...] = ("running", "promoted", "refused", "failed", "nothing", "dry")
COMPLETED: tuple[str, ...] = ("promoted", "refused", "nothing")  # runs whose selection counts as learned
FEEDBACK_SETTLE_S = 10.0  # twice the default busy timeout: a feedback write in flight has committed by then


@dataclass(slots=True, frozen=True)
class Watermarks:
    """How far a run selected: the highest ids seen, and the end of its feedback window (ISO time; '': none yet)."""

    message: int = 0
    fact: int = 0
    forgotten: int = 0
    feedback: str = ""


@dataclass(slots=True)
class LearningRun:
    id: int
    started_at: str
    finished_at: str | None
    status: str
    watermarks: Watermarks
    adapter_version: int | None = None
    report: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "watermarks": {
                "message": self.watermarks.message,
                "fact": self.watermarks.fact,
                "forgotten": self.watermarks.forgotten,
                "feedback": self.watermarks.feedback,
            },
            "adapter_version": self.adapter_version,
            "report": self.report,
        }


# -- conversations ----------------------------------------------------------------------------------------------------


def set_conversation_learn(store: Store, conversation_id: int, on: bool) -> None:
    """Let the learning job learn from a conversation (the default), or never (``on=False``)."""
    with store.guard(write=True) as db:
        done = db.execute("UPDATE conversations SET learn = ? WHERE id = ?", [int(bool(on)), conversation_id])
        if done.rowcount == 0:
            raise NotFoundError(f"There is no conversation {conversation_id}; `assistant history list` shows them.")


def conversation_learns(store: Store, conversation_id: int) -> bool:
    with store.guard() as db:
        row = db.execute("SELECT learn FROM conversations WHERE id = ?", [conversation_id]).fetchone()
    if row is None:
        raise NotFoundError(f"There is no conversation {conversation_id}; `assistant history list` shows them.")
    return bool(row[0])


# -- what the selection reads -----------------------------------------------------------------------------------------


@contextmanager
def snapshot(store: Store) -> Iterator[None]:
    """One read transaction: every read inside sees the same database (WAL), however others write meanwhile."""
    with store.guard() as db:
        db.execute("BEGIN")
        try:
            yield
        finally:
            db.execute("COMMIT")


def current_watermarks(store: Store) -> Watermarks:
    """The highest ids stored now, and the end of the feedback window (now less the settling time)."""
    settled = (datetime.now(UTC) - timedelta(seconds=FEEDBACK_SETTLE_S)).isoformat(timespec="milliseconds")
    with store.guard() as db:
        message = db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
        fact = db.execute("SELECT coalesce(max(id), 0) FROM facts").fetchone()[0]
        forgotten = db.execute("SELECT coalesce(max(id), 0) FROM forgotten").fetchone()[0]
    return Watermarks(int(message), int(fact), int(forgotten), settled)


_CANDIDATE_SQL = """
    SELECT m.id, m.conversation_id, m.role, m.content, m.complete, m.superseded_by, m.badge,
           f.rating, f.better_answer, f.updated_at AS feedback_at, c.learn
    FROM messages m
    JOIN conversations c ON c.id = m.conversation_id
    LEFT JOIN feedback f ON f.message_id = m.id
    WHERE m.id <= :upto AND (
        (m.role = 'user' AND m.id > :after)
        OR (m.role = 'assistant' AND f.updated_at > :feedback_after AND f.updated_at <= :feedback_upto)
    )
    ORDER BY m.id
"""


def learning_candidates(store: Store, since: Watermarks, upto: Watermarks) -> list[dict[str, Any]]:
    """Rows the selection judges: user messages above the watermark, and replies whose feedback changed in the
    window, each with its conversation's ``learn`` flag, rating, better answer and badge."""
    params = {
        "after": since.message,
        "upto": upto.message,
        "feedback_after": since.feedback,
        "feedback_upto": upto.feedback,
    }
    with store.guard() as db:
        return [dict(row) for row in db.query(_CANDIDATE_SQL, params)]


def prompt_of(store: Store, reply_id: int) -> dict[str, Any] | None:
    """The user message a reply answers: the latest current user message before it in its conversation."""
    with store.guard() as db:
        rows = list(
            db.query(
                "SELECT u.id, u.content, u.superseded_by FROM messages u JOIN messages r ON r.id = :reply "
                "WHERE u.conversation_id = r.conversation_id AND u.role = 'user' AND u.id < r.id "
                "AND u.superseded_by IS NULL ORDER BY u.id DESC LIMIT 1",
                {"reply": reply_id},
            )
        )
    return dict(rows[0]) if rows else None


def facts_between(store: Store, after: int, upto: int) -> list[tuple[int, str]]:
    """Remembered facts with ``after < id <= upto``, oldest first."""
    with store.guard() as db:
        rows = db.execute("SELECT id, text FROM facts WHERE id > ? AND id <= ? ORDER BY id", [after, upto])
        return [(int(r[0]), str(r[1])) for r in rows.fetchall()]


def live_sources(store: Store, sources: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    """Of these ``(kind, id)`` sources, those that may still be learned from: the fact exists, or the message
    exists, is not superseded, and its conversation's ``learn`` toggle is on. A forgotten item is gone, so it is
    never among them."""
    wanted: dict[str, set[int]] = {"message": set(), "fact": set()}
    for kind, item_id in sources:
        if kind in wanted:
            wanted[kind].add(int(item_id))
    live: set[tuple[str, int]] = set()
    queries = {
        "message": "SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "WHERE c.learn = 1 AND m.superseded_by IS NULL AND m.id IN ({marks})",
        "fact": "SELECT id FROM facts WHERE id IN ({marks})",
    }
    with store.guard() as db:
        for kind, ids in wanted.items():
            ordered = sorted(ids)
            for start in range(0, len(ordered), 500):  # SQLite's bound-parameter limit
                chunk = ordered[start : start + 500]
                sql = queries[kind].format(marks=", ".join("?" for _ in chunk))
                live.update((kind, int(r[0])) for r in db.execute(sql, chunk).fetchall())
    return live


def endorsed_replies(store: Store, ids: Iterable[int]) -> set[int]:
    """Of these replies, those the user still vouches for: rated up, or given a better answer."""
    wanted = sorted({int(i) for i in ids})
    found: set[int] = set()
    with store.guard() as db:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = db.execute(
                f"SELECT message_id FROM feedback WHERE message_id IN ({marks}) "
                "AND (rating = 1 OR coalesce(better_answer, '') != '')",
                chunk,
            )
            found.update(int(r[0]) for r in rows.fetchall())
    return found


# -- runs -------------------------------------------------------------------------------------------------------------


def start_run(store: Store) -> int:
    """Record a run as started (status running); its id."""
    with store.guard(write=True) as db:
        cursor = db.execute("INSERT INTO learning_runs (started_at, status) VALUES (?, 'running')", [now()])
        return int(cursor.lastrowid or 0)


def finish_run(
    store: Store,
    run_id: int,
    status: RunStatus,
    watermarks: Watermarks | None = None,
    adapter_version: int | None = None,
    report: dict[str, Any] | None = None,
) -> None:
    """Record how a run ended, how far it selected, the adapter it made and its report (JSON)."""
    if status not in RUN_STATUSES or status == "running":
        raise InputError(f"A run cannot finish as {status!r}; one of {', '.join(RUN_STATUSES[1:])}.")
    marks = watermarks or Watermarks()
    with store.guard(write=True) as db:
        done = db.execute(
            "UPDATE learning_runs SET finished_at = ?, status = ?, message_watermark = ?, fact_watermark = ?, "
            "forgotten_watermark = ?, feedback_watermark = ?, adapter_version = ?, report = ? WHERE id = ?",
            [
                now(),
                status,
                marks.message,
                marks.fact,
                marks.forgotten,
                marks.feedback,
                adapter_version,
                json.dumps(report or {}, ensure_ascii=False),
                run_id,
            ],
        )
        if done.rowcount == 0:
            raise NotFoundError(f"There is no learning run {run_id}.")


def mark_interrupted(store: Store) -> int:
    """Close runs left 'running' by a job that died (call it holding the job's lock): failed. How many."""
    report = json.dumps({"error": "The run was interrupted before it finished."})
    with store.guard(write=True) as db:
        done = db.execute(
            "UPDATE learning_runs SET status = 'failed', finished_at = ?, report = coalesce(report, ?) "
            "WHERE status = 'running'",
            [now(), report],
        )
        return int(done.rowcount)


def _run(row: Any) -> LearningRun:
    return LearningRun(
        id=row["id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status=row["status"],
        watermarks=Watermarks(
            row["message_watermark"], row["fact_watermark"], row["forgotten_watermark"], row["feedback_watermark"]
        ),
        adapter_version=row["adapter_version"],
        report=json.loads(row["report"]) if row["report"] else {},
    )


def get_run(store: Store, run_id: int) -> LearningRun:
    with store.guard() as db:
        rows = list(db.query("SELECT * FROM learning_runs WHERE id = ?", [run_id]))
    if not rows:
        raise NotFoundError(f"There is no learning run {run_id}.")
    return _run(rows[0])


def last_successful_run(store: Store) -> LearningRun | None:
    """The latest completed run (promoted, refused or nothing): where the next selection starts."""
    marks = ", ".join(f"'{s}'" for s in COMPLETED)
    with store.guard() as db:
        rows = list(db.query(f"SELECT * FROM learning_runs WHERE status IN ({marks}) ORDER BY id DESC LIMIT 1"))
    return _run(rows[0]) if rows else None


def list_runs(store: Store, limit: int | None = None) -> list[LearningRun]:
    """Runs, newest first."""
    tail = f" LIMIT {int(limit)}" if limit else ""
    with store.guard() as db:
        return [_run(row) for row in db.query(f"SELECT * FROM learning_runs ORDER BY id DESC{tail}")]
