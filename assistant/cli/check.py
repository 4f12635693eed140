"""`assistant check`: personal data, secrets and grounding for a stream of texts (JSON Lines in, JSON Lines out).

Lines are read on a thread and checked in batches of what has arrived (up to :data:`BATCH`), so a file of
thousands goes through the embedder in large batches while a slow producer still sees each answer as soon as its
line is in. Batches are written in input order and flushed as each comes back (from this process, or from worker
processes with --jobs).
"""

from __future__ import annotations

import io
import json
import os
import queue
import stat
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

import click

from assistant.cli.output import note, progress
from assistant.errors import InputError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from assistant.checks.run import Checker, CheckInput, CheckResult

BATCH = 64  # lines per detector call: large enough for the embedder to batch well, small enough to stream
EXIT_BAD_LINE = InputError.exit_code  # 2: some line was malformed
EXIT_FAILED_LINE = 1  # some line made a detector fail (a bug to report); its output line says which
EXIT_INTERRUPTED = 130  # Ctrl+C, as `assistant chat`


@dataclass(slots=True, frozen=True)
class _Error:
    message: str  # one sentence, the line's {"error": ...}
    malformed: bool  # the input's fault (exit 2), else a checker's (exit 1)


@dataclass(slots=True)
class _Line:
    number: int  # 1-based, counting every input line (blank ones too), as an editor shows them
    raw: bytes | None  # None: longer than the limit, skipped unread


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """The stream's bytes as they come. A file descriptor is read directly: a daemon thread blocked inside
    sys.stdin.buffer would hold its lock when Ctrl+C ends the program, and Python aborts at exit on that lock."""
    try:
        fd: int | None = stream.fileno()
    except (OSError, AttributeError, io.UnsupportedOperation):
        fd = None
    while chunk := (os.read(fd, 1 << 16) if fd is not None else stream.read(1 << 16)):
        yield chunk


def _read_lines(stream: IO[bytes], out: queue.Queue[_Line | None], limit: int) -> None:
    """Put each non-blank line (one over ``limit`` bytes as a marker, never held whole) on ``out``; None at the end."""
    number = 0
    held = bytearray()
    too_long = False

    def emit() -> None:
        nonlocal number, too_long
        number += 1
        if too_long:
            out.put(_Line(number, None))
        elif held.strip():
            out.put(_Line(number, bytes(held)))
        held.clear()
        too_long = False

    try:
        for chunk in _chunks(stream):
            at = 0
            while (end := chunk.find(b"\n", at)) >= 0:
                if not too_long:
                    held.extend(chunk[at:end])
                    too_long = len(held) > limit
                emit()
                at = end + 1
            if not too_long:
                held.extend(chunk[at:])
                if len(held) > limit:
                    too_long = True
                    held.clear()
        if held or too_long:
            emit()
    finally:
        out.put(None)


def _count_lines(stream: IO[bytes]) -> int | None:
    """How many lines a file on stdin holds (for the progress bar); None for a pipe or a terminal."""
    try:
        fd = stream.fileno()
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        start = os.lseek(fd, 0, os.SEEK_CUR)
    except (OSError, ValueError, AttributeError):
        return None
    count, at, last = 0, start, b"\n"
    while chunk := os.pread(fd, 1 << 20, at):  # pread leaves the read position where it is
        count += chunk.count(b"\n")
        at += len(chunk)
        last = chunk[-1:]
    return count + (last != b"\n")


class _Writer:
    """Output lines on stdout, flushed per batch; a closed pipe (`| head`) stops the run quietly."""

    def __init__(self) -> None:
        # Taken now: while a progress bar is live, rich points sys.stdout at the stderr console.
        self.stream = sys.stdout
        self.broken = False
        self.written = 0

    def write(self, lines: list[str]) -> None:
        if self.broken or not lines:
            return
        # Counted first: a Ctrl+C right after the flush must not make the note undercount what a reader has.
        self.written += len(lines)
        try:
            self.stream.write("".join(line + "\n" for line in lines))
            self.stream.flush()
        except BrokenPipeError:
            self.broken = True
            # Python would complain again when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())


def _json_line(outcome: CheckResult | _Error) -> str:
    value = {"error": outcome.message} if isinstance(outcome, _Error) else outcome.to_dict()
    return json.dumps(value, ensure_ascii=False)


def _human_line(number: int, outcome: CheckResult | _Error) -> str:
    if isinstance(outcome, _Error):
        return f"{number:>5}  error: {outcome.message}"
    kinds = sorted({f.type for f in outcome.pii})
    pii = f"{len(outcome.pii)} found ({', '.join(kinds)})" if kinds else "none found"
    grounding = outcome.grounding
    if grounding.score is None:
        ground = "no context to check against"
    else:
        ground = f"score {grounding.score:.2f}"
        if grounding.flagged:
            ground += f", {len(grounding.flagged)} flagged: {grounding.flagged[0].reason}"
    return f"{number:>5}  personal data/secrets: {pii} · grounding: {ground}"


@dataclass(slots=True)
class _Pending:
    """A batch on its way: the lines, their outcomes so far (parse errors), and the checks still running."""

    lines: list[_Line]
    outcomes: list[CheckResult | _Error | None]
    checked: Future[list[CheckResult | str]]


def _start(batch: list[_Line], checker: Checker) -> _Pending:
    """Parse the batch's lines (a malformed one gets its error now) and send the rest to be checked."""
    from assistant.checks.run import parse_line, too_long

    outcomes: list[CheckResult | _Error | None] = []
    good: list[CheckInput] = []
    for line in batch:
        where = f"Line {line.number}"
        try:
            if line.raw is None:
                raise too_long(where)
            good.append(parse_line(line.raw, where))
            outcomes.append(None)  # filled in when its check is back
        except InputError as exc:
            outcomes.append(_Error(str(exc), malformed=True))
    return _Pending(batch, outcomes, checker.submit(good))


def _finish(pending: _Pending) -> list[CheckResult | _Error]:
    """Each line's result or its one-sentence error, in order (waits for the batch's checks)."""
    results = iter(pending.checked.result())
    out: list[CheckResult | _Error] = []
    for line, outcome in zip(pending.lines, pending.outcomes, strict=True):
        if outcome is None:
            result = next(results)
            if isinstance(result, str):
                outcome = _Error(f"Line {line.number} could not be checked ({result}).", malformed=False)
            else:
                outcome = result
        out.append(outcome)
    return out


def _next_batch(lines: queue.Queue[_Line | None]) -> tuple[list[_Line], bool]:
    """Wait for one line, then take what else has already arrived (up to BATCH); True once the input ended."""
    first = lines.get()
    if first is None:
        return [], True
    batch = [first]
    while len(batch) < BATCH:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            break
        if line is None:
            return batch, True
        batch.append(line)
    return batch, False


def run_check(
    stdin: IO[bytes],
    writer: _Writer,
    human: bool,
    on_batch: Callable[[int], None] | None = None,
    jobs: int = 1,
) -> int:
    """Check every line of ``stdin``; the exit code (0, or EXIT_BAD_LINE / EXIT_FAILED_LINE when a line failed)."""
    from assistant.checks.run import MAX_LINE_BYTES, Checker

    lines: queue.Queue[_Line | None] = queue.Queue(maxsize=BATCH * 4)
    threading.Thread(target=_read_lines, args=(stdin, lines, MAX_LINE_BYTES), daemon=True).start()
    checker = Checker(jobs)
    in_flight = 1 if checker.jobs == 1 else 2 * checker.jobs  # enough to keep every worker busy
    pending: deque[_Pending] = deque()
    bad = failed = done = False
    try:
        while (pending or not done) and not writer.broken:
            # Write the oldest batch once enough are running, at the end, or when no more input is waiting (a
            # producer that waits for its answer before writing the next line must get it).
            if pending and (done or len(pending) >= in_flight or lines.empty()):
                batch = pending.popleft()
                outcomes = _finish(batch)
                for outcome in outcomes:
                    if isinstance(outcome, _Error):
                        bad = bad or outcome.malformed
                        failed = failed or not outcome.malformed
                if human:
                    writer.write([_human_line(line.number, o) for line, o in zip(batch.lines, outcomes, strict=True)])
                else:
                    writer.write([_json_line(o) for o in outcomes])
                if on_batch is not None:
                    on_batch(batch.lines[-1].number)
                continue
            new, done = _next_batch(lines)
            if new:
                pending.append(_start(new, checker))
    finally:
        checker.close()
    return EXIT_BAD_LINE if bad else EXIT_FAILED_LINE if failed else 0


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Write JSON Lines even when stdout is a terminal.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Worker processes checking batches side by side (0: one per CPU core); each loads its own models.",
)
def check(as_json: bool, jobs: int) -> None:
    """Check texts for personal data, secrets and unsupported claims: JSON Lines on stdin, one answer per line.

    \b
    Each input line is an object:
      {"text": "...", "context": ["source", ...], "user_inputs": ["what the user typed", ...]}
    ("context" and "user_inputs" are optional). Each answer, in input order:
      {"pii": [{"type", "start", "end", "text"}], "redacted": "...",
       "grounding": {"score": 0.0-1.0 or null, "flagged": [{"start", "end", "text", "reason"}]}}
    Offsets count characters of "text". "redacted" masks every finding except what the user typed; secrets are
    always masked. "score" is null when there is no context to check against.

    \b
    A malformed line gets {"error": "one sentence"} as its answer and the rest go on. Blank lines are skipped
    (no answer). Answers are JSON Lines whenever stdout is a file or a pipe; on a terminal they are one readable
    line each unless --json is given. A progress bar shows on stderr when stderr is a terminal and stdout is not.

    \b
    Exit codes: 0 every line was checked; 2 some line was malformed; 1 some line made a checker fail;
    130 interrupted (the answers written so far are whole lines).

    \b
    The grounding embedder takes most of the time and runs on one core; --jobs N checks batches in N worker
    processes side by side (each loads its own models: a few seconds and some 300 MB), for large inputs on a
    machine with cores to spare. The answers are the same, in the same order.

    \b
    Example:
      assistant check < replies.jsonl | jq -c '.grounding.score'
    """
    stdin = sys.stdin.buffer if sys.stdin is not None else None
    if stdin is None:
        raise InputError("Nothing to check: pipe JSON Lines on stdin (`assistant check < texts.jsonl`).")
    interactive = sys.stdin.isatty()
    if interactive:
        note('Reading JSON Lines such as {"text": "..."} from the terminal; Ctrl+D ends.')
    to_terminal = sys.stdout.isatty()
    writer = _Writer()
    # A bar only beside a file or a pipe: on a terminal the answers themselves show the progress.
    show_bar = sys.stderr.isatty() and not to_terminal and not interactive
    total = _count_lines(stdin) if show_bar else None
    with progress(total, "Checking", enabled=show_bar) as advance:
        seen = [0]

        def on_batch(last: int) -> None:
            # The bar counts input lines, blank and skipped ones included, like the file it measures.
            advance(last - seen[0])
            seen[0] = last

        workers = jobs or os.cpu_count() or 1
        try:
            code = run_check(stdin, writer, human=to_terminal and not as_json, on_batch=on_batch, jobs=workers)
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:
        count = "1 answer was" if writer.written == 1 else f"{writer.written} answers were"
        note(f"Interrupted; {count} written, each for its input line in order.")
    if code:
        click.get_current_context().exit(code)
