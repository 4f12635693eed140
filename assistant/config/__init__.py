"""One place for paths and settings.

Paths come from the ground floor (``storage.paths``): the private data dir (``$ASSISTANT_HOME``), the cache dir
(``$ASSISTANT_CACHE``) and the named places in them. Settings are validated into one typed object
(``assistant.config.settings``, loaded on first use so that the TUI's first frame does not wait for pydantic).
Every ``ASSISTANT_*`` environment variable is read here and nowhere else.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.paths import (
    APP_NAME,
    DB_FILE,
    SETTINGS_FILE,
    adapters_dir,
    cache_dir,
    data_dir,
    db_path,
    embedder_cache_dir,
    ensure_private_dir,
    make_private,
    memory_dir,
    models_dir,
    settings_file,
)

if TYPE_CHECKING:
    from assistant.config.settings import (
        DEFAULT_SYSTEM_PROMPT,
        Settings,
        load_settings,
        save_setting,
        validate,
    )

__all__ = [
    "APP_NAME",
    "DB_FILE",
    "DEFAULT_SYSTEM_PROMPT",
    "SETTINGS_FILE",
    "Settings",
    "adapters_dir",
    "cache_dir",
    "data_dir",
    "db_path",
    "db_timeout",
    "embedder_cache_dir",
    "ensure_private_dir",
    "env_model",
    "load_settings",
    "make_private",
    "memory_dir",
    "models_dir",
    "peek_setting",
    "save_setting",
    "settings_file",
    "validate",
]

_LAZY = {"DEFAULT_SYSTEM_PROMPT", "Settings", "load_settings", "save_setting", "validate"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from assistant.config import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'assistant.config' has no attribute {name!r}")


DB_TIMEOUT_ENV = "ASSISTANT_DB_TIMEOUT"
MODEL_ENV = "ASSISTANT_MODEL"
THEME_ENV = "ASSISTANT_THEME"


def db_timeout(default: float = 5.0) -> float:
    """SQLite's busy timeout in seconds: ``$ASSISTANT_DB_TIMEOUT``, else ``default``."""
    raw = os.environ.get(DB_TIMEOUT_ENV)
    if raw is None:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        return default


def env_model() -> str | None:
    """The model named by ``$ASSISTANT_MODEL`` (it overrides the settings file), if any."""
    return os.environ.get(MODEL_ENV) or None


def peek_setting(key: str, home: Path | None = None) -> Any:
    """One setting's raw value (environment first, then the settings file) without validating anything: for the
    TUI's first frame, which must not wait for the settings machinery. ``None`` when unset or unreadable."""
    raw = os.environ.get(f"ASSISTANT_{key.upper()}")
    if raw is not None:
        return raw
    try:
        with open(settings_file(home), "rb") as fh:
            return tomllib.load(fh).get(key)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
