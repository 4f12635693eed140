"""What a front end does with the memory: list, add and forget facts, search what can be recalled, forget an
earlier message. Forgetting goes through ``assistant.forget``, so the rules about it live in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.session import Session
    from storage.db import Store
    from storage.facts import Fact
    from storage.memory import Memory, Recall


def list_facts(store: Store, query: str = "") -> list[Fact]:
    """Every remembered fact, newest first; ``query`` keeps those containing it."""
    from storage.facts import list_facts as _list

    return _list(store, query)


def remember(store: Store, text: str) -> int:
    """Remember a fact the user typed; returns its id (an empty or over-long fact is refused with InputError)."""
    from storage.facts import add_fact

    return add_fact(store, text)


def save_warning(text: str, fact_id: int) -> str | None:
    """The warning to show when a saved fact looks like a secret or credential (None for an everyday fact)."""
    from assistant.sensitive import save_warning as _warning

    return _warning(text, fact_id)


def forget_fact(store: Store, fact_id: int, memory: Memory | None = None) -> str | None:
    """Delete one fact; the sentence to show when a learned adapter that knew it was turned off."""
    from assistant.forget import forget_fact as _forget

    return _forget(store, fact_id, memory=memory).notice


def forget_message(store: Store, message_id: int, memory: Memory | None = None) -> str | None:
    """Delete one message from its conversation and from the index; the sentence to show when a learned adapter
    that knew it was turned off."""
    from assistant.forget import forget_message as _forget

    return _forget(store, message_id, memory=memory).notice


@dataclass(slots=True)
class MemorySearch:
    recalls: list[Recall] = field(default_factory=list)
    pending: int = 0  # newer messages not indexed yet: found by their words only
    unavailable: str | None = None  # why the memory could not search (None: it did)
    memory_off: bool = False


def search_memory(session: Session, query: str, k: int) -> MemorySearch:
    """Earlier messages that can be recalled for ``query``, best first (waits for the memory's warm-up, so call
    it off the UI thread). Failures come back in ``unavailable``, never as an exception."""
    memory = session.wait_for_memory()
    if memory is None:
        reason = session.memory_error
        return MemorySearch(unavailable=reason, memory_off=reason is None)
    try:
        recalls = memory.search(query, k, mode="hybrid")
        pending = memory.pending_count()
    except Exception as exc:  # the caller shows why; nothing is lost
        return MemorySearch(unavailable=f"the search failed ({type(exc).__name__}: {exc})")
    return MemorySearch(recalls, pending)
