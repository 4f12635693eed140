"""Errors that speak to the user: each carries one clear sentence saying what went wrong and what to do.

The family lives on the ground floor (``storage``) so that every layer above can raise and catch it;
``assistant.errors`` re-exports it.
"""

from __future__ import annotations


class AssistantError(Exception):
    """An error whose message is meant for the user, not a traceback."""

    exit_code = 1


class InputError(AssistantError):
    """The user's input cannot be used (empty, binary, malformed, a bad setting)."""

    exit_code = 2


class ModelError(AssistantError):
    """A model is missing, corrupt or cannot be loaded."""

    exit_code = 3


class StorageError(AssistantError):
    """The data directory or database cannot be used (unwritable, locked, full, corrupt)."""

    exit_code = 4


class NotFoundError(AssistantError):
    """A conversation, message or model that the user named does not exist."""

    exit_code = 5
