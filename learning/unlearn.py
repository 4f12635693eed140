"""Unlearning and tidying for the learning job: what a run does before it trains.

- Forgotten items (new forget records since the last completed run): the replay buffer is rewritten without them,
  and every adapter trained on one is turned off at once and its files deleted right away (state ``removed``).
  Not kept until a clean successor is promoted: such an adapter can never be activated again
  (``assistant.adapters.activate`` refuses it), so its file would only keep on disk what the user asked to forget.
  When the active adapter was one of them, the newest earlier adapter of that base model that is clean and present
  takes over, else the base model serves. The run then trains a new adapter without the items (from the replay
  buffer).
- A run killed part-way leaves at most a folder the database never pointed at, or a candidate adapter whose run did
  not finish; both are removed before the next run starts. The active adapter is never touched by this.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.adapters import adapter_file, forgotten_in
from learning.replay import purge_replay
from storage.adapters import adapters_containing, list_adapters, set_active, set_adapter_state
from storage.forgotten import ForgetRecord
from storage.paths import adapters_dir

if TYPE_CHECKING:
    from storage.db import Store

RUN_DIR = re.compile(r"^run-\d+$")
TRAINING_DIR = "training"  # the training checkpoint: a run on the same data and arguments resumes from it


@dataclass(slots=True)
class Unlearned:
    """What forgetting changed in this run."""

    forgotten: int = 0  # forget records new since the last run (messages and facts)
    replay_removed: int = 0
    removed: list[int] = field(default_factory=list)  # adapter versions turned off and deleted
    now_active: int | None = None  # what serves after that, when an active one was removed (None: the base model)
    active_removed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "forgotten": self.forgotten,
            "replay_removed": self.replay_removed,
            "removed": self.removed,
            "now_active": self.now_active,
            "active_removed": self.active_removed,
        }

    def sentence(self) -> str:
        if not self.removed:
            return ""
        versions = ", ".join(f"v{v}" for v in self.removed)
        serving = f"adapter v{self.now_active}" if self.now_active else "the base model"
        tail = f"; {serving} answers until a new one is promoted" if self.active_removed else ""
        return f"Deleted adapter(s) {versions}, which were trained on what you have forgotten{tail}."


def run_dir(home: Path, run_id: int) -> Path:
    return adapters_dir(home) / f"run-{run_id}"


def unlearn(store: Store, home: Path, forgotten: list[ForgetRecord]) -> Unlearned:
    """Purge the replay buffer, and turn off and delete every adapter trained on a forgotten item."""
    done = Unlearned(forgotten=sum(r.kind in ("message", "fact") for r in forgotten))
    done.replay_removed = purge_replay(store, home)
    if not forgotten:
        return done
    hit: dict[int, Any] = {}
    for kind in ("message", "fact"):
        ids = [r.item_id for r in forgotten if r.kind == kind]
        for adapter in adapters_containing(store, kind, ids):
            hit[adapter.version] = adapter
    for version in sorted(hit, reverse=True):
        adapter = hit[version]
        if adapter.state == "active":
            done.active_removed = True
            done.now_active = _fallback(store, home, adapter.base_model, set(hit))
            if done.now_active is not None:
                set_active(store, done.now_active)  # one write: the removed one becomes inactive with it
        set_adapter_state(store, version, "removed")
        _delete_files(home, adapter.path)
        done.removed.append(version)
    return done


def _fallback(store: Store, home: Path, base_model: str, excluded: set[int]) -> int | None:
    """The newest adapter of ``base_model`` that may serve instead: present, clean, not being removed."""
    for adapter in list_adapters(store, base_model):
        if (
            adapter.version not in excluded
            and adapter.state == "inactive"
            and adapter_file(adapter, home).is_file()
            and not forgotten_in(store, adapter.version)
        ):
            return adapter.version
    return None


def _delete_files(home: Path, path: str) -> None:
    """An adapter's GGUF, and its run folder (peft weights, report) when it has one."""
    target = Path(path)
    full = target if target.is_absolute() else adapters_dir(home) / target
    folder = full.parent
    if folder.parent == adapters_dir(home) and RUN_DIR.match(folder.name):
        shutil.rmtree(folder, ignore_errors=True)
    else:
        full.unlink(missing_ok=True)


def tidy(store: Store, home: Path) -> list[str]:
    """Remove what runs killed part-way left behind; what was removed (for the report)."""
    removed: list[str] = []
    for adapter in list_adapters(store):
        if adapter.state == "candidate":  # registered, never promoted nor refused: its run died
            set_adapter_state(store, adapter.version, "removed")
            _delete_files(home, adapter.path)
            removed.append(f"v{adapter.version}")
    root = adapters_dir(home)
    if not root.is_dir():
        return removed
    referenced = {
        Path(a.path).parts[0] for a in list_adapters(store) if a.state != "removed" and not Path(a.path).is_absolute()
    }
    for entry in root.iterdir():
        if entry.is_dir() and RUN_DIR.match(entry.name) and entry.name not in referenced:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed
