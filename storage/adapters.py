"""Adapters the learning job trained: versions, the base model each belongs to, which one is active, and what each
was trained on (migration m007). Plain functions over the ``Store``.

Base model: an adapter belongs to the model it was trained on and is never applied to another. It is named by
:func:`base_model_id`: the model's name and a fingerprint of its GGUF file (sha256 over its size and 16 evenly
spaced 64 KiB samples, head and tail included). Copying or touching the file keeps it; re-quantising or replacing
the weights changes it; it costs milliseconds even for a file of gigabytes, so a chat can check it at every start.

At most one adapter is active per base model: :func:`set_active` swaps in one transaction, and a partial unique
index makes the database refuse a second whatever path writes. ``adapter_items`` keeps ids only (like
``forgotten``), so forgetting an item finds the adapters that contained it (:func:`adapters_containing`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from storage.db import Store, now
from storage.errors import InputError, NotFoundError

AdapterState = Literal["candidate", "active", "inactive", "refused", "removed"]
ADAPTER_STATES: tuple[str, ...] = ("candidate", "active", "inactive", "refused", "removed")
ItemKind = Literal["message", "fact"]

_SAMPLES = 16
_SAMPLE_BYTES = 64 * 1024


@dataclass(slots=True)
class Adapter:
    version: int
    base_model: str
    path: str
    created_at: str
    state: str
    metrics: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "base_model": self.base_model,
            "path": self.path,
            "created_at": self.created_at,
            "state": self.state,
            "metrics": self.metrics,
            "run_id": self.run_id,
        }


# -- base model -------------------------------------------------------------------------------------------------------


def file_fingerprint(path: Path) -> str:
    """16 hex digits that change when the file's content does (sampled: size, head, tail and 14 points between)."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with path.open("rb") as handle:
        if size <= _SAMPLES * _SAMPLE_BYTES:
            digest.update(handle.read())
        else:
            step = (size - _SAMPLE_BYTES) // (_SAMPLES - 1)
            for n in range(_SAMPLES):
                handle.seek(n * step)
                digest.update(handle.read(_SAMPLE_BYTES))
    return digest.hexdigest()[:16]


def base_model_id(name: str, path: Path) -> str:
    """What an adapter is tied to: ``"<model name>@<file fingerprint>"``."""
    return f"{name}@{file_fingerprint(path)}"


# -- adapters ---------------------------------------------------------------------------------------------------------


def _adapter(row: Any) -> Adapter:
    return Adapter(
        version=row["version"],
        base_model=row["base_model"],
        path=row["path"],
        created_at=row["created_at"],
        state=row["state"],
        metrics=json.loads(row["metrics"]) if row["metrics"] else {},
        run_id=row["run_id"],
    )


def add_adapter(
    store: Store,
    base_model: str,
    path: str,
    items: Iterable[tuple[str, int]] = (),
    metrics: dict[str, Any] | None = None,
    run_id: int | None = None,
    state: AdapterState = "candidate",
) -> int:
    """Register an adapter (a candidate unless told) with what it was trained on, ``(kind, id)`` pairs of
    'message' and 'fact', in one transaction; its version. An active one goes through :func:`set_active`."""
    if state not in ADAPTER_STATES or state == "active":
        raise InputError(f"An adapter is added as one of candidate, inactive, refused, removed; not {state!r}.")
    rows = sorted({(str(kind), int(item_id)) for kind, item_id in items})
    unknown = {kind for kind, _ in rows} - {"message", "fact"}
    if unknown:
        raise InputError(f"An adapter is trained on messages and facts, not {sorted(unknown)}.")
    with store.guard(write=True) as db:
        cursor = db.execute(
            "INSERT INTO adapters (base_model, path, created_at, metrics, state, run_id) VALUES (?, ?, ?, ?, ?, ?)",
            [base_model, path, now(), json.dumps(metrics or {}, ensure_ascii=False), state, run_id],
        )
        version = int(cursor.lastrowid or 0)
        db.conn.executemany(
            "INSERT INTO adapter_items (adapter_version, kind, item_id) VALUES (?, ?, ?)",
            [(version, kind, item_id) for kind, item_id in rows],
        )
    return version


def get_adapter(store: Store, version: int) -> Adapter:
    with store.guard() as db:
        rows = list(db.query("SELECT * FROM adapters WHERE version = ?", [version]))
    if not rows:
        raise NotFoundError(f"There is no adapter {version}; `assistant adapters list` shows them.")
    return _adapter(rows[0])


def set_active(store: Store, version: int) -> Adapter:
    """Make one adapter the active one of its base model; the one active before becomes inactive. One
    transaction: no reader ever sees two active, or none between the two writes. A removed one cannot be."""
    with store.guard(write=True) as db:
        row = db.execute("SELECT base_model, state FROM adapters WHERE version = ?", [version]).fetchone()
        if row is None:
            raise NotFoundError(f"There is no adapter {version}; `assistant adapters list` shows them.")
        if row[1] == "removed":
            raise InputError(f"Adapter {version} was removed (its file is gone); it cannot be activated.")
        db.execute(
            "UPDATE adapters SET state = 'inactive' WHERE base_model = ? AND state = 'active' AND version != ?",
            [row[0], version],
        )
        db.execute("UPDATE adapters SET state = 'active' WHERE version = ?", [version])
    return get_adapter(store, version)


def set_adapter_state(store: Store, version: int, state: AdapterState) -> None:
    """Mark an adapter candidate, inactive, refused or removed (activation goes through :func:`set_active`)."""
    if state not in ADAPTER_STATES or state == "active":
        raise InputError(f"Use set_active to activate an adapter; {state!r} is not a state to set here.")
    with store.guard(write=True) as db:
        if db.execute("UPDATE adapters SET state = ? WHERE version = ?", [state, version]).rowcount == 0:
            raise NotFoundError(f"There is no adapter {version}; `assistant adapters list` shows them.")


def set_adapter_metrics(store: Store, version: int, metrics: dict[str, Any]) -> None:
    with store.guard(write=True) as db:
        done = db.execute(
            "UPDATE adapters SET metrics = ? WHERE version = ?", [json.dumps(metrics, ensure_ascii=False), version]
        )
        if done.rowcount == 0:
            raise NotFoundError(f"There is no adapter {version}; `assistant adapters list` shows them.")


def active_adapter(store: Store, base_model: str) -> Adapter | None:
    """The adapter to apply to this base model (see :func:`base_model_id`), or None: the base model alone."""
    with store.guard() as db:
        rows = list(db.query("SELECT * FROM adapters WHERE base_model = ? AND state = 'active'", [base_model]))
    return _adapter(rows[0]) if rows else None


def list_adapters(store: Store, base_model: str | None = None) -> list[Adapter]:
    """Adapters, newest first; only one base model's when given."""
    sql, params = "SELECT * FROM adapters", []
    if base_model is not None:
        sql += " WHERE base_model = ?"
        params.append(base_model)
    with store.guard() as db:
        return [_adapter(row) for row in db.query(sql + " ORDER BY version DESC", params)]


def adapter_items(store: Store, version: int) -> list[tuple[str, int]]:
    """What an adapter was trained on: ``(kind, id)`` pairs."""
    with store.guard() as db:
        rows = db.execute(
            "SELECT kind, item_id FROM adapter_items WHERE adapter_version = ? ORDER BY kind, item_id", [version]
        )
        return [(str(r[0]), int(r[1])) for r in rows.fetchall()]


def adapters_containing(
    store: Store, kind: ItemKind, ids: Iterable[int], include_removed: bool = False
) -> list[Adapter]:
    """The adapters trained on any of these items (to unlearn them: deactivate, delete, retrain), newest first."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return []
    found: set[int] = set()
    with store.guard() as db:
        for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = db.execute(
                f"SELECT DISTINCT adapter_version FROM adapter_items WHERE kind = ? AND item_id IN ({marks})",
                [kind, *chunk],
            )
            found.update(int(r[0]) for r in rows.fetchall())
    adapters = [get_adapter(store, v) for v in sorted(found, reverse=True)]
    return [a for a in adapters if include_removed or a.state != "removed"]
