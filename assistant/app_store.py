"""Open the user's store with the settings that govern it (the busy timeout comes from ``assistant.config``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from assistant.config import db_timeout

if TYPE_CHECKING:
    from storage.db import Store


def open_store(home: Path | None = None, timeout: float | None = None) -> Store:
    """Open (creating if needed) the store in the private data dir; the busy timeout is ``timeout``, else
    ``$ASSISTANT_DB_TIMEOUT``, else 5 s."""
    from storage.db import open_store as _open

    return _open(home, timeout=db_timeout() if timeout is None else timeout)
