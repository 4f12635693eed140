"""Feedback on a reply: thumbs up or down, and the better answer the user wrote (read by `history show`, the
exports and, once it lands, the learning job). Every front end records feedback through here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.db import Store


def rate(store: Store, message_id: int, rating: int | None) -> None:
    """Thumbs up (1), down (-1), or neither (None) for a reply of the assistant."""
    store.set_feedback(message_id, rating=rating)


def toggle_rating(store: Store, message_id: int, current: int | None, pressed: int) -> int | None:
    """The rating after the user pressed ``pressed`` (1 or -1): the same key again clears it. Returns it."""
    new = None if current == pressed else pressed
    rate(store, message_id, new)
    return new


def save_better_answer(store: Store, message_id: int, text: str) -> None:
    """Keep the answer the user says the assistant should have given (empty clears it)."""
    store.set_feedback(message_id, better_answer=text.strip() or None)
