"""The ground floor for paths: the private data dir, the cache dir and the named places inside them.

The data dir is ``$ASSISTANT_HOME`` or the platform's user data dir; it is created 0700 and every file the
assistant writes in it is 0600. The cache dir holds derived files with no user data (the embedder's ONNX
export). Every path the assistant uses is named here once; nothing else writes ``home / "models"``.
"""

from __future__ import annotations

import os
from pathlib import Path

from storage.errors import StorageError

APP_NAME = "assistant"
SETTINGS_FILE = "settings.toml"
DB_FILE = "assistant.db"
HOME_ENV = "ASSISTANT_HOME"
CACHE_ENV = "ASSISTANT_CACHE"


def data_dir() -> Path:
    """The data dir: ``$ASSISTANT_HOME`` if set, else the platform's user data dir."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Derived files that hold no user data (the embedder's ONNX export): ``$ASSISTANT_CACHE`` or the platform's
    user cache dir. Shared by every data dir, so a second profile or a test does not export the model again."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def settings_file(home: Path | None = None) -> Path:
    """The settings file of a data dir."""
    return (home or data_dir()) / SETTINGS_FILE


def db_path(home: Path | None = None) -> Path:
    """The SQLite database of a data dir."""
    return (home or data_dir()) / DB_FILE


def models_dir(home: Path | None = None) -> Path:
    """Models the user added or pulled (and assembled bundled ones)."""
    return (home or data_dir()) / "models"


def memory_dir(home: Path | None = None) -> Path:
    """The vector index of the semantic memory (derived from SQLite, rebuildable)."""
    return (home or data_dir()) / "memory"


def adapters_dir(home: Path | None = None) -> Path:
    """LoRA adapters written by the learning job (derived, versioned in SQLite)."""
    return (home or data_dir()) / "adapters"


def unsaved_dir(home: Path | None = None) -> Path:
    """Replies finished while another program held the database, kept here until they can be stored."""
    return (home or data_dir()) / "unsaved"


def notes_index_path(home: Path | None = None) -> Path:
    """The search index of the user's notes folder (derived, rebuildable). It holds snippets of the notes, so it
    lives in the private data dir, not in the shared cache dir."""
    return (home or data_dir()) / "notes-index.db"


def logs_dir(home: Path | None = None) -> Path:
    """Logs of helper processes (an MCP server's stderr), kept out of the terminal and private like the rest."""
    return (home or data_dir()) / "logs"


def embedder_cache_dir() -> Path:
    """Where the embedder's one-time ONNX export is kept (shared by every data dir)."""
    return cache_dir() / "models"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (0700) if needed and make sure it is private and writable."""
    # Every file the process creates from here on (SQLite's -wal and -shm included) is private.
    os.umask(0o077)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        raise StorageError(
            f"Cannot use the data directory {path}: {exc.strerror or exc}. "
            f"Fix its permissions or point {HOME_ENV} at a writable directory."
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise StorageError(
            f"The data directory {path} is not writable. "
            f"Fix its permissions or point {HOME_ENV} at a writable directory."
        )
    return path


def make_private(path: Path) -> None:
    """Make one file 0600 (best effort: it may not exist yet)."""
    try:
        path.chmod(0o600)
    except FileNotFoundError:
        pass
