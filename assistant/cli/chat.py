"""`assistant chat`: send one message and stream the reply to stdout.

Each call starts a new conversation unless told otherwise: ``--conversation ID`` continues that one and
``--continue`` / ``-c`` the most recently active one. Notices go to stderr so that stdout holds only the reply
(or, with ``--json``, one JSON object, whose ``memories`` and ``facts`` say what the reply was given from memory,
and whose ``checks`` and ``badge`` hold the checker's verdict). Personal data and secrets are masked while the reply
streams (``assistant.reply_check``); a reply found unsupported or masked gets one line about it on stderr.

With memory on, the message and the reply stay queued for indexing when the command exits: the next call indexes
them while its model loads, before it recalls (only a large backlog is indexed before an exit). ``--no-memory``
sends neither recalled snippets nor remembered facts for this call (the messages are still stored, and indexed
the next time memory runs); `/remember X` and "remember that X" still store the fact.

`/tool NAME arguments` runs a tool without the model (`assistant chat "/tool calculate 2+3*4"`): the reply is its
result, and ``--json`` lists every tool result under ``tools``. A tool that changes things asks first on a terminal;
``--yes`` lets it run without asking, and without a terminal it is refused (the reply says so).

The reply is written with the adapter that learning made for the model, when one is active (``"adapter"`` in
``--json``: ``"v3"``, or null for the base model); ``--no-adapter`` uses the base model alone for this call.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.output import emit_json, note
from assistant.errors import AssistantError, InputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from assistant.session import Session, Turn
    from assistant.tools.core import Tool

INTERRUPTED_EXIT = 130
NOT_TEXT = "The input is not valid UTF-8 text (it looks like binary data); send text only."


def decode_input(data: bytes) -> str:
    """Bytes from stdin as text: strict UTF-8, no NUL bytes, one trailing newline (from `echo`) dropped."""
    if b"\x00" in data:
        raise InputError(NOT_TEXT)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(NOT_TEXT) from exc
    text = text.removeprefix("\ufeff")  # a byte order mark from some editors is not part of the message
    return text.removesuffix("\n").removesuffix("\r")


def read_message(words: tuple[str, ...]) -> str:
    """The message: the arguments, or stdin when no argument is given and stdin is not a terminal."""
    if words:
        text = " ".join(words)
        if "\x00" in text:
            raise InputError(NOT_TEXT)
    elif sys.stdin is not None and not sys.stdin.isatty():
        text = decode_input(sys.stdin.buffer.read())
    else:
        raise InputError('Nothing to send: give a message (`assistant chat "Hello"`) or pipe one on stdin.')
    if not text.strip():
        raise InputError('Nothing to send: the message is empty; give some text (`assistant chat "Hello"`).')
    return text


class _Printer:
    """Writes streamed text to stdout, flushed per chunk; a closed pipe (`| head`) ends the reply quietly."""

    def __init__(self) -> None:
        self.last = ""
        self.broken = False

    def write(self, text: str) -> None:
        if not text or self.broken:
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            self.broken = True
            # Python would complain again when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
        self.last = text

    def end_line(self) -> None:
        if self.last and not self.last.endswith("\n"):
            self.write("\n")


def _stream(turn: Turn, printer: _Printer | None) -> None:
    chunks = turn.stream()
    try:
        for chunk in chunks:
            if printer is not None:
                printer.write(chunk.text)
                if printer.broken:
                    break
    finally:
        # Closing the generator (also on Ctrl-C between chunks) stores what was generated so far.
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


@click.command()
@click.argument("message", nargs=-1)
@click.option("--conversation", "conversation_id", type=int, metavar="ID", help="Continue conversation ID.")
@click.option("--continue", "-c", "continue_latest", is_flag=True, help="Continue the most recent conversation.")
@click.option("--new", "force_new", is_flag=True, help="Start a new conversation (the default).")
@click.option("--model", "-m", "model", metavar="NAME", help="Use this model for this message (see `models list`).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the reply and its numbers.")
@click.option("--no-memory", is_flag=True, help="Recall nothing and send no remembered facts for this message.")
@click.option("--no-adapter", is_flag=True, help="Answer with the base model, without the adapter learning made.")
@click.option("--yes", "-y", "yes", is_flag=True, help="Let tools that change things run without asking.")
def chat(
    message: tuple[str, ...],
    conversation_id: int | None,
    continue_latest: bool,
    force_new: bool,
    model: str | None,
    as_json: bool,
    no_memory: bool,
    no_adapter: bool,
    yes: bool,
) -> None:
    """Send MESSAGE and stream the reply; with no MESSAGE, read it from stdin when piped.

    Every call starts a new conversation unless --conversation ID or --continue is given.
    """
    if sum([conversation_id is not None, continue_latest, force_new]) > 1:
        raise InputError("Choose one of --conversation, --continue and --new.")
    text = read_message(message)

    from assistant.app_store import open_store
    from assistant.cli.models import prepare_model
    from assistant.config import data_dir, load_settings, models_dir
    from assistant.session import Session

    home = data_dir()
    settings = load_settings(home)
    with open_store(home) as store:
        if continue_latest:
            latest = store.list_conversations(limit=1)
            if latest:
                conversation_id = latest[0].id
            else:
                note("There is no conversation to continue yet; starting a new one.")
        # Checked before anything is stored, so a mistyped --model leaves no stray conversation behind, and before
        # the memory starts, so a refusal never leaves its warm-up thread running while the process exits.
        prepare_model(store, model or settings.model, models_dir(home))
        # The memory warms up in a thread from here on, beside the model's load, and catches up with earlier calls.
        session = Session(
            store,
            settings,
            model=model,
            home=home,
            use_memory=False if no_memory else None,
            background_index=False,
            use_adapter=False if no_adapter else None,
        )
        session.confirm_tool = _confirm_tool(yes)
        printer = None if as_json else _Printer()
        turn: Turn | None = None
        try:
            turn = session.start_turn(text, conversation_id=conversation_id)
            said = turn.notice or ""
            if said:
                note(said)
            _stream(turn, printer)
        except KeyboardInterrupt:
            if printer is not None:
                printer.end_line()
            if turn is None:
                note("Interrupted before the reply started.")
            else:
                if as_json and turn.result is not None:
                    emit_json(turn.result.to_dict())
                note(f"Stopped; the partial reply was kept in conversation {turn.conversation_id}.")
            sys.exit(INTERRUPTED_EXIT)
        except AssistantError:
            if printer is not None:
                printer.end_line()  # so the error sentence starts on its own line
            elif as_json and turn is not None and turn.result is not None and not turn.result.saved:
                emit_json(turn.result.to_dict())  # a reply that could not be saved is printed anyway
            raise
        else:
            assert turn is not None and turn.result is not None
            if as_json:
                emit_json(turn.result.to_dict())
            elif printer is not None:
                printer.end_line()
            if later := _later_notice(said, turn.result.notice):
                note(later)  # what the reply itself brought (a loop cut, an after-reply step), after the reply
            if not as_json:
                _say_checks(turn.result.checks)
            if session.use_memory and session.indexing_behind:
                _index_before_exit(session)
        finally:
            session.close()
    # Everything is written and closed. Python's last garbage collections at exit would walk every object that
    # chromadb, onnxruntime and llama.cpp's bindings created (0.2-0.5 s measured): the process ends without them.
    gc.freeze()


def _confirm_tool(yes: bool) -> Callable[[Tool, dict[str, Any]], bool]:
    """Whether a tool with side effects may run: yes with --yes; else asked on a terminal, refused otherwise."""

    def confirm(tool: Tool, arguments: dict[str, Any]) -> bool:
        if yes:
            return True
        shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        if sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty():
            return click.confirm(f"Run the tool {tool.name}({shown})? It changes things.", err=True, default=False)
        note(f"The tool {tool.name} changes things; run the command again with --yes to let it.")
        return False

    return confirm


def _say_checks(checks: dict[str, object] | None) -> None:
    """On stderr, what the checker found when it is worth a look: something masked or withheld, or claims the
    sources do not support (a general-knowledge reply with nothing to check against says nothing here; `--json`
    has every detail)."""
    from assistant.checks import ReplyCheck

    verdict = ReplyCheck.from_dict(checks) if checks else None
    if verdict is None or verdict.badge not in ("masked", "unsupported"):
        return
    lines = [line for line in verdict.why() if not line.startswith("Nothing to check")]
    note(f"Checked: {verdict.badge}. " + " ".join(lines))


def _later_notice(said: str, final: str | None) -> str:
    """The part of the final notice that was not said before the reply started."""
    final = final or ""
    return final[len(said) :].strip() if final.startswith(said) else final


def _index_before_exit(session: Session) -> None:
    """Index a backlog the warm-up left (and this turn's messages) now; a failure only postpones it."""
    try:
        session.index_now()
    except KeyboardInterrupt:
        note("Indexing for memory was interrupted; it resumes on the next call.")
    except Exception as exc:
        note(f"This message could not be indexed for memory yet ({exc}); it will be on a later call.")
