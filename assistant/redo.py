"""Answering again: which message a regenerate, an edit-and-resend or a retry answers, and what it replaces.

Nothing is deleted: what a new turn replaces stays stored, marked superseded by it (``storage.revisions``), and
leaves the conversation and its prompts. The learning job reads a regenerated pair as a preference.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.errors import InputError
from assistant.memory_prompt import parse_remember
from storage.db import Store
from storage.records import Message


@dataclass(slots=True)
class Redo:
    """A message of the user to answer again, the history before it, and the messages the new turn replaces."""

    conversation_id: int
    user: Message
    history: list[Message]
    replaces: list[int]


def regenerate(store: Store, reply_message_id: int) -> Redo:
    """The message a reply answered; the reply and anything after it are replaced."""
    reply = store.get_message(reply_message_id)
    if reply.role != "assistant":
        raise InputError(f"Message {reply_message_id} is not a reply of the assistant; only replies regenerate.")
    if reply.superseded_by is not None:
        raise InputError(f"Reply {reply_message_id} was already replaced; regenerate the current reply instead.")
    messages = store.messages(reply.conversation_id)
    asked = [m for m in messages if m.role == "user" and m.id < reply.id]
    if not asked:
        raise InputError(f"Reply {reply_message_id} answers no message of yours, so there is nothing to ask again.")
    user = asked[-1]
    remember = parse_remember(user.content)
    if remember is not None and remember.command:
        raise InputError("A /remember confirmation is not written by the model; there is nothing to regenerate.")
    return Redo(
        reply.conversation_id, user, [m for m in messages if m.id < user.id], [m.id for m in messages if m.id > user.id]
    )


def edit(store: Store, user_message_id: int) -> Redo:
    """A message of the user to replace: it and everything after it are replaced by the edited one."""
    old = store.get_message(user_message_id)
    if old.role != "user":
        raise InputError(f"Message {user_message_id} is not one of yours; only your messages can be edited.")
    if old.superseded_by is not None:
        raise InputError(f"Message {user_message_id} was already replaced; edit the current one instead.")
    messages = store.messages(old.conversation_id)
    return Redo(
        old.conversation_id, old, [m for m in messages if m.id < old.id], [m.id for m in messages if m.id >= old.id]
    )


def retry(store: Store, conversation_id: int) -> Redo:
    """The conversation's last message of the user when it has no complete reply; a partial reply is replaced."""
    store.get_conversation(conversation_id)
    messages = store.messages(conversation_id)
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users:
        raise InputError(f"Conversation {conversation_id} has no message of yours to answer.")
    last = users[-1]
    after = messages[last + 1 :]
    if any(m.role == "assistant" and m.complete for m in after):
        raise InputError(
            f"The last message of conversation {conversation_id} already has a complete reply; "
            "regenerate it for another one."
        )
    return Redo(conversation_id, messages[last], messages[:last], [m.id for m in after])
