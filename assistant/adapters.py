"""The app's view of the learning job's adapters: which one applies to a loaded model, and the user's actions on them
(activate, roll back, remove) that `assistant adapters` and the TUI share.

An adapter belongs to the base model it was trained on (``storage.adapters.base_model_id``: the model's name and a
fingerprint of its GGUF file) and is looked up by that id only, so one trained on another model, or on an earlier
file of the same name, is never applied. The fingerprint is cached per file (path, size, mtime): a chat checks for
a newly promoted adapter at the start of every turn, and that costs one SQLite query.

An adapter trained on something the user has since forgotten is never activated again (not by rollback either):
the next learning run trains one without it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import AssistantError, InputError, ModelError, NotFoundError, StorageError
from assistant.runtime.base import SupportsAdapters
from storage.adapters import (
    Adapter,
    active_adapter,
    adapter_items,
    base_model_id,
    get_adapter,
    list_adapters,
    set_active,
    set_adapter_state,
)
from storage.db import Store
from storage.paths import adapters_dir

if TYPE_CHECKING:
    from assistant.models import ModelSpec

_fingerprints: dict[tuple[str, str, int, int], str] = {}
_fingerprints_lock = threading.Lock()


def label(version: int) -> str:
    """How an adapter version is shown and stored with a reply: ``"v3"``."""
    return f"v{version}"


def base_model_of(name: str, path: Path) -> str:
    """``base_model_id`` of a model file, computed once per (path, size, mtime)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(f"The model file {path} cannot be read ({exc.strerror or exc}).") from exc
    key = (name, str(path), stat.st_size, stat.st_mtime_ns)
    with _fingerprints_lock:
        found = _fingerprints.get(key)
    if found is None:
        found = base_model_id(name, path)
        with _fingerprints_lock:
            _fingerprints[key] = found
    return found


def adapter_file(adapter: Adapter, home: Path) -> Path:
    """Where an adapter's GGUF lies (a relative path is inside the data dir's adapters folder)."""
    path = Path(adapter.path).expanduser()
    return path if path.is_absolute() else adapters_dir(home) / path


def forgotten_in(store: Store, version: int) -> int:
    """How many of the items an adapter was trained on the user has since forgotten."""
    items = adapter_items(store, version)
    if not items:
        return 0
    with store.guard() as db:
        gone = {(str(r[0]), int(r[1])) for r in db.execute("SELECT kind, item_id FROM forgotten").fetchall()}
    return sum(1 for item in items if item in gone)


@dataclass(slots=True)
class Applied:
    """What a turn runs with: the adapter's file and label, or none (the base model)."""

    path: Path | None
    version: str | None


def adapter_for(store: Store, name: str, model_path: Path, home: Path) -> Applied:
    """The adapter to apply to this model now: its base model's active one, or none."""
    adapter = active_adapter(store, base_model_of(name, model_path))
    if adapter is None:
        return Applied(None, None)
    return Applied(adapter_file(adapter, home), label(adapter.version))


class AdapterSync:
    """Keeps a loaded model on the adapter that should answer now: a chat calls :meth:`apply` at the start of each
    turn, so a newly promoted adapter, a rollback or a removal takes effect without a restart."""

    def __init__(self, store: Store, home: Path) -> None:
        self.store = store
        self.home = home
        self._failed: tuple[str, int, int] | None = None  # a file that failed is said once, not at every turn

    def apply(self, backend: object, spec: ModelSpec | None, enabled: bool = True) -> str | None:
        """Swap ``backend`` to the active adapter of ``spec``'s base model (or to none when ``enabled`` is False);
        one sentence when that adapter could not be applied (the base model then answers)."""
        if not isinstance(backend, SupportsAdapters) or spec is None or spec.path is None:
            return None  # a runtime without adapters (or a canned reply): nothing to swap
        wanted = Applied(None, None)
        if enabled:
            try:
                wanted = adapter_for(self.store, spec.name, spec.path, self.home)
            except AssistantError as exc:  # the chat goes on, with the base model
                if backend.adapter_path is None:
                    return None
                backend.set_adapter(None)
                return f"The adapter could not be looked up, so the base model answers ({_cause(exc)})."
        if wanted.path == backend.adapter_path:
            backend.set_adapter(wanted.path, wanted.version)  # nothing to swap; the label may have changed
            return None
        key = _file_key(wanted.path) if wanted.path is not None else None
        if key is not None and key == self._failed:
            return None  # said when it failed; the base model goes on answering until the file changes
        try:
            backend.set_adapter(wanted.path, wanted.version)
        except ModelError as exc:  # set_adapter left the base model serving
            self._failed = key
            return f"Adapter {wanted.version} was not applied, so the base model answers: {_cause(exc)}."
        self._failed = None
        return None


def _cause(exc: BaseException) -> str:
    return str(exc).strip().rstrip(".") or type(exc).__name__


def _file_key(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), stat.st_size, stat.st_mtime_ns)


# -- the user's actions ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class AdapterRow:
    """One line of `assistant adapters list`."""

    adapter: Adapter
    current_base: bool  # trained on the model in use now
    file_present: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.adapter.to_dict(),
            "label": label(self.adapter.version),
            "active": self.adapter.state == "active",
            "current_model": self.current_base,
            "file_present": self.file_present,
        }


def adapter_rows(store: Store, base_model: str, home: Path) -> list[AdapterRow]:
    """Every adapter, newest first, with whether it fits the model in use and whether its file is there."""
    return [
        AdapterRow(a, a.base_model == base_model, a.state != "removed" and adapter_file(a, home).is_file())
        for a in list_adapters(store)
    ]


def activate(store: Store, version: int, base_model: str, home: Path) -> Adapter:
    """Make adapter ``version`` the one the model in use answers with, from the next turn on."""
    adapter = get_adapter(store, version)
    if adapter.base_model != base_model:
        raise InputError(
            f"Adapter {label(version)} was trained on another model ({adapter.base_model}), not the one in use "
            f"({base_model}); switch to that model first."
        )
    if adapter.state == "removed":
        raise InputError(f"Adapter {label(version)} was removed (its file is gone); it cannot be activated.")
    if not adapter_file(adapter, home).is_file():
        raise NotFoundError(f"The file of adapter {label(version)} is missing ({adapter_file(adapter, home)}).")
    forgotten = forgotten_in(store, version)
    if forgotten:
        raise InputError(
            f"Adapter {label(version)} was trained on {forgotten} item(s) you have since forgotten; "
            "it stays off (the next learning run trains one without them)."
        )
    return set_active(store, version)


def rollback(store: Store, base_model: str, home: Path) -> tuple[Adapter | None, Adapter | None]:
    """Step back from the active adapter of ``base_model`` to the newest earlier one that can serve, or to the base
    model when there is none; returns (the one turned off, the one active now or None)."""
    adapters = list_adapters(store, base_model)
    current = next((a for a in adapters if a.state == "active"), None)
    if current is None:
        return None, None
    for earlier in adapters:
        if (
            earlier.version < current.version
            and earlier.state == "inactive"
            and adapter_file(earlier, home).is_file()
            and not forgotten_in(store, earlier.version)
        ):
            return current, set_active(store, earlier.version)
    set_adapter_state(store, current.version, "inactive")
    return current, None


def remove(store: Store, version: int, home: Path, force: bool = False) -> Adapter:
    """Delete an adapter's file and mark it removed; the active one only with ``force`` (the base model serves)."""
    adapter = get_adapter(store, version)
    if adapter.state == "active" and not force:
        raise InputError(
            f"Adapter {label(version)} is the active one; roll back first (`assistant adapters rollback`) "
            "or remove it with --force (the base model then answers)."
        )
    # Marked first: a file deleted under an adapter still marked usable would fail at the next turn.
    set_adapter_state(store, version, "removed")
    if adapter.state != "removed":
        path = adapter_file(adapter, home)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(
                f"Adapter {label(version)} is marked removed, but its file {path} could not be deleted "
                f"({exc.strerror or exc}); delete it by hand."
            ) from exc
    return get_adapter(store, version)
