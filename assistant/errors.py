"""Errors that speak to the user (the family is defined on the ground floor, in ``storage.errors``)."""

from __future__ import annotations

from storage.errors import AssistantError, InputError, ModelError, NotFoundError, StorageError

__all__ = ["AssistantError", "InputError", "ModelError", "NotFoundError", "StorageError"]
