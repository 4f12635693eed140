"""The replay buffer: what earlier runs learned, so that each adapter, trained from the base model, still knows it.

Stored as JSON Lines at ``adapters_dir(home) / "replay.jsonl"`` (0600): one redacted item per line (a statement,
a fact or a pair, with its sources and the run that selected it), never a built example. Examples are synthesised
again from these items at every run, so old and new statements about the same thing merge into one answer ("What
do I like?") and a newer single value wins ("I moved to Porto").

Unlearning: :func:`load_replay` keeps only items whose every source still exists in SQLite, is not superseded and
sits in a conversation that may be learned from, and pairs whose reply is still rated up or has a better answer;
:func:`purge_replay` rewrites the file the same way. A forgotten
message or fact (deleted: see ``storage.forgotten``) therefore never comes back from here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learning.select import Pair, Selection, Source, Statement, normalised
from storage.learning import endorsed_replies, live_sources
from storage.paths import adapters_dir, ensure_private_dir, make_private

if TYPE_CHECKING:
    from storage.db import Store

Item = Statement | Pair
REPLAY_FILE = "replay.jsonl"


def replay_path(home: Path | None = None) -> Path:
    return adapters_dir(home) / REPLAY_FILE


def item_sources(item: Item) -> tuple[Source, ...]:
    return item.sources if isinstance(item, Pair) else (item.source,)


def _key(item: Item) -> str:
    if isinstance(item, Pair):
        return "pair\x1f" + normalised(item.prompt) + "\x1f" + normalised(item.target)
    return "said\x1f" + normalised(item.text)


def to_record(item: Item, run_id: int | None) -> dict[str, Any]:
    return {**item.to_dict(), "run": run_id}


def from_record(record: dict[str, Any]) -> Item | None:
    """An item from one line of the file (None for a line this version cannot read)."""
    try:
        if record["type"] == "pair":
            sources = tuple(Source(str(k), int(i)) for k, i in record["sources"])
            return Pair(str(record["prompt"]), str(record["target"]), sources, bool(record.get("better", False)))
        kind, item_id = record["source"]
        origin = "fact" if record["type"] == "fact" else "statement"
        return Statement(str(record["text"]), Source(str(kind), int(item_id)), origin)
    except (KeyError, TypeError, ValueError):
        return None


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash mid-write: the rest is still good
            if isinstance(record, dict):
                records.append(record)
    return records


def _write(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace the file atomically (a crash leaves the old one or the new one, never half of either)."""
    ensure_private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    make_private(tmp)
    os.replace(tmp, path)
    make_private(path)


def load_replay(store: Store, home: Path | None = None) -> list[Item]:
    """Earlier runs' items that may still be learned from, oldest first, each once."""
    items = [item for record in _read(replay_path(home)) if (item := from_record(record)) is not None]
    learnable = _learnable(store, items)
    seen: set[str] = set()
    kept: list[Item] = []
    for item in items:
        key = _key(item)
        if key in seen or not learnable(item):
            continue
        seen.add(key)
        kept.append(item)
    return kept


def _learnable(store: Store, items: list[Item]) -> Callable[[Item], bool]:
    """Whether an item may still be learned: every source still there and learnable (not forgotten, not
    superseded, its conversation's toggle on), and a pair's reply still rated up or given a better answer."""
    live = live_sources(store, [s for item in items for s in item_sources(item)])
    endorsed = endorsed_replies(store, [item.sources[-1].id for item in items if isinstance(item, Pair)])

    def ok(item: Item) -> bool:
        if not all(s in live for s in item_sources(item)):
            return False
        return not isinstance(item, Pair) or item.sources[-1].id in endorsed

    return ok


def append_replay(selection: Selection, run_id: int | None, home: Path | None = None) -> int:
    """Add a (redacted) selection's items to the buffer, those not already in it; how many were added. Call it
    when a run completes, whether its adapter was promoted or refused: its items stay learnable either way."""
    path = replay_path(home)
    records = _read(path)
    # A reply's feedback changed (a new better answer): its new pair replaces the old one.
    replied = {pair.sources for pair in selection.pairs}
    kept: list[dict[str, Any]] = []
    known: set[str] = set()
    before: set[str] = set()
    for record in records:
        old = from_record(record)
        if old is None:
            continue
        before.add(_key(old))
        if not (isinstance(old, Pair) and old.sources in replied):
            kept.append(record)
            known.add(_key(old))
    new: list[dict[str, Any]] = []
    fresh: list[Item] = [*selection.statements, *selection.facts, *selection.pairs]
    for item in fresh:
        if _key(item) not in known:
            known.add(_key(item))
            new.append(to_record(item, run_id))
    if [*kept, *new] != records:
        _write(path, [*kept, *new])
    return len({_key(i) for i in fresh} - before)


def purge_replay(store: Store, home: Path | None = None) -> int:
    """Rewrite the buffer without forgotten (or no longer learnable) items; how many were removed."""
    path = replay_path(home)
    records = _read(path)
    items = [(record, from_record(record)) for record in records]
    learnable = _learnable(store, [item for _, item in items if item is not None])
    kept = [r for r, item in items if item is not None and learnable(item)]
    if len(kept) != len(records):
        _write(path, kept)
    return len(records) - len(kept)
