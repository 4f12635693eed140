"""`assistant history`: list, show, search, export, import and delete stored conversations."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from assistant.app_store import open_store
from assistant.cli.output import console, emit_json, note, print_table, progress
from assistant.errors import InputError, StorageError
from storage.db import Store
from storage.records import Message

if TYPE_CHECKING:
    from assistant.forget import Forgotten

PROGRESS_FROM = 20  # conversations; smaller imports finish before a bar would be worth drawing

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@click.group()
def history() -> None:
    """List, show, search, export, import and delete conversations."""


@history.command("list")
@click.option("--limit", "-n", type=click.IntRange(min=1), help="Show at most this many (newest first).")
@click.option("--filter", "-f", "filter_text", default="", help="Only conversations whose title contains this.")
@json_option
def list_(limit: int | None, filter_text: str, as_json: bool) -> None:
    """List conversations, newest first."""
    from storage.transfer import human_time

    with open_store() as store:
        conversations = store.list_conversations(filter_text=filter_text, limit=limit)
    if as_json:
        emit_json(conversations)
        return
    if not conversations:
        note("No conversations match." if filter_text else "No conversations yet.")
        return
    print_table(
        ["#id", "title", "#messages", "updated"],
        [(c.id, c.title or "(untitled)", c.message_count, human_time(c.updated_at, local=True)) for c in conversations],
    )


@history.command()
@click.argument("conversation_id", metavar="ID", type=int)
@json_option
def show(conversation_id: int, as_json: bool) -> None:
    """Show one conversation with timestamps, incomplete replies and feedback."""
    with open_store() as store:
        conversation = store.get_conversation(conversation_id)
        messages = store.messages(conversation_id)
    if as_json:
        from storage.transfer import message_record

        emit_json({**_asdict(conversation), "messages": [message_record(m) for m in messages]})
        return
    from rich.text import Text

    from storage.transfer import human_time

    out = console()
    out.print(Text(conversation.title or "(untitled)", style="bold"))
    about = f"conversation {conversation.id} · started {human_time(conversation.created_at, local=True)}"
    if conversation.model:
        about += f" · {conversation.model}"
    if conversation.source != "chat":
        about += f" · {conversation.source}"
    out.print(Text(about, style="dim"))
    for message in messages:
        out.print()
        out.print(_message_header(message))
        out.print(Text(message.content))
        for line in _tool_lines(message):
            out.print(Text(line, style="dim"))
        if message.better_answer:
            out.print(Text("Better answer: ", style="bold green") + Text(message.better_answer))


def _tool_lines(message: Message) -> list[str]:
    """One line per tool result stored with a reply: the call, then its result or why it failed."""
    import json

    try:
        items = json.loads(message.tools) if message.tools else []
    except ValueError:
        return []
    lines = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        arguments = item["arguments"] if isinstance(item.get("arguments"), dict) else {}
        call = f"{item.get('tool')}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
        said = item.get("content") if item.get("ok") else f"failed: {item.get('error')}"
        if said == message.content:  # `/tool NAME`: the reply is the result itself
            lines.append(f"  tool {call}")
        else:
            lines.append(f"  tool {call} -> {' '.join(str(said).split())[:200]}")
    return lines


def _message_header(message: Message) -> object:
    from rich.text import Text

    from storage.transfer import human_time, incomplete_note, rating_label

    style = {"user": "bold cyan", "assistant": "bold magenta"}.get(message.role, "bold")
    header = Text({"user": "You", "assistant": "Assistant"}.get(message.role, message.role.title()), style=style)
    header.append(f"  {human_time(message.created_at, local=True)}  #{message.id}", style="dim")
    if label := rating_label(message.rating):
        header.append(f"  [{label}]", style="green" if message.rating == 1 else "red")
    if reason := incomplete_note(message):
        header.append(f"  [{reason}]", style="yellow")
    if message.badge and message.badge != "ok":  # the checker's verdict: worth a look
        colour = {"unsupported": "red", "masked": "blue"}.get(message.badge, "yellow")
        header.append(f"  [checked: {message.badge}]", style=colour)
    return header


@history.command()
@click.argument("text")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="Most hits.")
@json_option
def search(text: str, limit: int, as_json: bool) -> None:
    """Full-text search over every message (best matches first)."""
    if not text.strip():
        raise InputError("Nothing to search for: give a word or phrase.")
    with open_store() as store:
        hits = store.search(text, limit=limit)
    if as_json:
        emit_json(hits)
        return
    if not hits:
        note(f"Nothing matches {text!r}.")
        return
    from storage.transfer import human_time

    print_table(
        ["#conv", "title", "role", "when", "snippet"],
        [
            (h.conversation_id, h.conversation_title, h.role, human_time(h.created_at, local=True), h.snippet)
            for h in hits
        ],
    )


@history.command()
@click.argument("conversation_id", metavar="[ID]", type=int, required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
    help="markdown to read; json for a complete copy that `history import` restores.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE (0600).")
def export(conversation_id: int | None, fmt: str, output: Path | None) -> None:
    """Export one conversation (ID) or all of them."""
    from storage.transfer import export_json, export_markdown

    with open_store() as store:
        text = (export_json if fmt == "json" else export_markdown)(store, conversation_id)
        if conversation_id is None and not store.list_conversations(limit=1):
            note("There are no conversations to export yet.")
    if output is None or str(output) == "-":
        click.echo(text, nl=False)
        return
    write_private(output, text)
    note(f"Exported to {output}.")


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, whole or not at all (a temp file renamed into place)."""
    directory = path.resolve().parent
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")  # mkstemp is 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StorageError(f"Cannot write {path}: {exc.strerror or exc}; nothing was written.") from exc


@history.command("import")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@json_option
def import_(file: Path, as_json: bool) -> None:
    """Import conversations from FILE (`-` for stdin).

    Accepts this assistant's JSON export, {"conversations": [{"title", "messages": [{"role", "content",
    "created_at"}]}]}, or ChatGPT's conversations.json. Everything is imported, or nothing.
    """
    from storage.transfer import import_parsed, read_import

    name = "stdin" if str(file) == "-" else str(file)
    raw = _read_input(file, name)
    parsed = read_import(raw, name)
    total = len(parsed.conversations)
    with open_store() as store:
        with progress(total, "Importing", enabled=None if total >= PROGRESS_FROM else False) as bar:
            result = import_parsed(store, parsed, on_progress=bar)
        if result.conversation_ids:
            _index_imported(store)
    if as_json:
        emit_json(result.to_dict())
        return
    kind = {"json": "assistant export", "minimal": "minimal JSON", "chatgpt": "ChatGPT export"}[result.format]
    count = len(result.conversation_ids)
    text = (
        f"Imported {count} conversation{'s' * (count != 1)} "
        f"({result.messages} message{'s' * (result.messages != 1)}) from {name} ({kind})"
    )
    if result.skipped:
        text += f"; skipped {result.skipped} with no visible messages"
    if result.duplicates:
        text += f"; {result.duplicates} already here, not imported again"
    note(text + ".")


def _index_imported(store: Store) -> None:
    """Index the imported messages for memory now (with a progress bar), so the next chat can recall them."""
    from assistant.cli.memory import ProgressBar
    from assistant.config import data_dir, load_settings
    from assistant.session import open_memory

    home = data_dir()
    settings = load_settings(home)
    if not settings.memory:
        return  # indexed when memory is turned on (the messages stay pending)
    try:
        memory = open_memory(store, home, settings)
        try:
            with ProgressBar("Indexing for memory") as bar:
                memory.index_pending(on_progress=bar)
        finally:
            memory.close()
    except KeyboardInterrupt:
        note("Indexing for memory was interrupted; the rest is indexed on the next chat.")
    except Exception as exc:  # the import itself is done and kept
        note(f"The conversations were imported but not yet indexed for memory ({exc}); `assistant memory reindex`.")


def _read_input(file: Path, name: str) -> bytes:
    if str(file) == "-":
        return sys.stdin.buffer.read()
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise InputError(f"Cannot import {name}: there is no such file.") from None
    except OSError as exc:
        raise InputError(f"Cannot import {name}: {exc.strerror or exc}.") from None


@history.command()
@click.argument("conversation_id", metavar="ID", type=int)
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@json_option
def delete(conversation_id: int, yes: bool, as_json: bool) -> None:
    """Delete a conversation with its messages and feedback."""
    with open_store() as store:
        conversation = store.get_conversation(conversation_id)
        if not yes:
            if not stdin_is_terminal():
                raise InputError(
                    f"Deleting conversation {conversation_id} needs confirmation and stdin is not a terminal; "
                    "pass --yes to delete it."
                )
            title = conversation.title or "(untitled)"
            question = f"Delete conversation {conversation_id} {title!r} and its {conversation.message_count} messages?"
            if not click.confirm(question, default=False, err=True):
                note("Nothing was deleted.")
                raise click.exceptions.Exit(1)
        forgotten = _delete_everywhere(store, conversation_id)
    if as_json:
        emit_json(
            {
                "deleted": conversation_id,
                "messages": len(forgotten.message_ids),
                "adapters_off": list(forgotten.adapters_off),
            }
        )
    else:
        note(f"Deleted conversation {conversation_id} ({len(forgotten.message_ids)} messages).")
        if forgotten.notice:
            note(forgotten.notice)


def _delete_everywhere(store: Store, conversation_id: int) -> Forgotten:
    """Forget the conversation in SQLite and, if the memory opens, in its index at once.

    Without the memory the tombstones make sure the vectors go on the next index pass, and search never returns a
    message SQLite no longer has, so the fallback forgets just as surely, only later on disk.
    """
    from assistant.config import data_dir, load_settings
    from assistant.forget import forget_conversation
    from assistant.session import open_memory

    try:
        home = data_dir()
        memory = open_memory(store, home, load_settings(home))
    except Exception:
        return forget_conversation(store, conversation_id)
    try:
        return forget_conversation(store, conversation_id, memory=memory)
    finally:
        memory.close()


def stdin_is_terminal() -> bool:
    """Whether someone can answer a question (a script piping into us cannot)."""
    return sys.stdin.isatty()


def _asdict(obj: object) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(obj)  # type: ignore[call-overload]
