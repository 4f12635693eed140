"""Checking texts in batches: the one entry point that `assistant check` (and the chat turn) calls.

A text goes through the privacy detector (personal data and secrets, then masked under the "redact" policy: what the
user typed may be shown back, secrets never) and the grounding detector (scored against its context). The
detectors are imported on first use and keep their models loaded, so a batch pays for loading once.

:func:`parse_line` turns one JSON Lines input into a :class:`CheckInput` or an :class:`InputError` whose message
is one sentence; the command writes that sentence as the line's ``{"error": ...}``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from assistant.checks import Finding, Grounding
from assistant.errors import AssistantError, InputError

MAX_LINE_BYTES = 4 * 1024 * 1024  # a longer input line is refused (and skipped unread), not held in memory


@dataclass(slots=True, frozen=True)
class CheckInput:
    """One text to check, the sources it should be grounded in, and what the user typed (may be shown back)."""

    text: str
    context: tuple[str, ...] = ()
    user_inputs: tuple[str, ...] = ()


@dataclass(slots=True)
class CheckResult:
    """What the checker found in one text (offsets into that text)."""

    pii: list[Finding]
    redacted: str
    grounding: Grounding = field(default_factory=lambda: Grounding(score=None))

    def to_dict(self) -> dict[str, Any]:
        """The `assistant check --json` line: exactly the documented fields."""
        return {
            "pii": [{"type": f.type, "start": f.start, "end": f.end, "text": f.text} for f in self.pii],
            "redacted": self.redacted,
            "grounding": self.grounding.to_dict(),
        }


class Detectors(Protocol):
    """The detectors a batch runs; the real ones by default (tests of the plumbing may pass a stand-in)."""

    def find_pii(self, text: str) -> list[Finding]: ...

    def redact(self, text: str, findings: list[Finding], user_inputs: Sequence[str]) -> str: ...

    def ground_many(self, items: Sequence[CheckInput]) -> list[Grounding]: ...


class RealDetectors:
    """assistant.checks.privacy and assistant.checks.grounding, imported here on first use (they load models)."""

    def __init__(self) -> None:
        from assistant.checks import grounding, privacy

        self._privacy = privacy
        self._grounding = grounding

    def find_pii(self, text: str) -> list[Finding]:
        return list(self._privacy.find_pii(text))

    def redact(self, text: str, findings: list[Finding], user_inputs: Sequence[str]) -> str:
        privacy = self._privacy
        if hasattr(privacy, "apply_policy"):
            outcome = privacy.apply_policy(text, findings, list(user_inputs), "redact")
            return str(outcome.text)
        return str(privacy.redact(text, findings))

    def ground_many(self, items: Sequence[CheckInput]) -> list[Grounding]:
        batch = getattr(self._grounding, "ground_many", None)
        if batch is not None:
            return list(batch([(item.text, list(item.context)) for item in items]))
        return [self._grounding.ground(item.text, list(item.context)) for item in items]


_real: RealDetectors | None = None


def real_detectors() -> RealDetectors:
    """The real detectors, created once per process."""
    global _real
    if _real is None:
        _real = RealDetectors()
    return _real


def check(item: CheckInput, detectors: Detectors | None = None) -> CheckResult:
    """Check one text."""
    return check_many([item], detectors)[0]


def check_many(items: Sequence[CheckInput], detectors: Detectors | None = None) -> list[CheckResult]:
    """Check a batch of texts, results in the same order (grounding embeds the batch's sentences together)."""
    det = detectors or real_detectors()
    groundings = det.ground_many(items)
    results: list[CheckResult] = []
    for item, grounding in zip(items, groundings, strict=True):
        findings = sorted(det.find_pii(item.text), key=lambda f: (f.start, f.end))
        redacted = det.redact(item.text, findings, item.user_inputs) if findings else item.text
        results.append(CheckResult(findings, redacted, grounding))
    return results


def check_isolated(items: Sequence[CheckInput], detectors: Detectors | None = None) -> list[CheckResult | Exception]:
    """Like :func:`check_many`, but a text that makes a detector fail gets that exception in its place, so one odd
    text does not stop a batch of thousands. A missing or broken model (an AssistantError) still stops it all."""
    try:
        return list(check_many(items, detectors))
    except AssistantError:
        raise
    except Exception:  # noqa: BLE001 - find which text it was, below
        pass
    out: list[CheckResult | Exception] = []
    for item in items:
        try:
            out.append(check(item, detectors))
        except AssistantError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported on the text's own output line
            out.append(exc)
    return out


def check_explained(items: Sequence[CheckInput]) -> list[CheckResult | str]:
    """:func:`check_isolated` with each failure as "ExceptionType: message" (what a worker process can send back)."""
    return [f"{type(r).__name__}: {r}" if isinstance(r, Exception) else r for r in check_isolated(items)]


def warm_up(grounding: bool = True) -> None:
    """Load the detectors' models now: the privacy detector's, and the embedder's unless ``grounding`` is False."""
    check_many([CheckInput("Warm-up: reach me at warm@example.com.", ("Warm-up text.",) if grounding else ())])


def _start_worker() -> None:
    import signal

    # Ctrl+C reaches the whole process group: the parent stops the run; a worker would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The embedder loads on the first batch with a context: input without one never pays for it.
    warm_up(grounding=False)


class Checker:
    """Checks batches in this process (``jobs`` 1) or in that many worker processes, each with its own detectors.

    The embedder takes most of the time, and it is fastest on one thread per process: more cores are used by more
    processes. A batch is split evenly among the workers, by context where it can be: the lines sharing one go to
    the same worker, whose caches (source vectors, the context's index) then serve them all, rather than every
    worker embedding every context; lines without a context are dealt out in turn. :meth:`submit` returns a
    future of the batch's results in order; the caller collects them in order.
    """

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = max(1, jobs)
        self._pools: list[Any] = []
        if self.jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: the parent runs a reader thread, which a fork would copy in an unknown state.
            context = multiprocessing.get_context("spawn")
            self._pools = [
                ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker) for _ in range(self.jobs)
            ]

    def submit(self, items: Sequence[CheckInput]) -> Future[list[CheckResult | str]]:
        if self._pools and items:
            return self._spread(items)
        done: Future[list[CheckResult | str]] = Future()
        done.set_result(check_explained(items) if items else [])
        return done

    def _spread(self, items: Sequence[CheckInput]) -> Future[list[CheckResult | str]]:
        shares: list[list[int]] = [[] for _ in self._pools]
        fair = -(-len(items) // len(shares))  # no worker takes more than its part: one context may fill a batch
        over: list[int] = []
        for at, item in enumerate(items):
            share = shares[hash(item.context) % len(shares) if item.context else at % len(shares)]
            (share if len(share) < fair else over).append(at)
        for at in over:
            min(shares, key=len).append(at)
        parts = [
            (share, self._pools[n].submit(check_explained, [items[i] for i in share]))
            for n, share in enumerate(shares)
            if share
        ]
        combined: Future[list[CheckResult | str]] = Future()
        lock = threading.Lock()
        left = [len(parts)]

        def collect(_: Future[list[CheckResult | str]]) -> None:
            with lock:
                left[0] -= 1
                if left[0]:
                    return
            if any(f.cancelled() for _, f in parts):  # the run is stopping (Ctrl+C, a closed pipe)
                combined.cancel()
                return
            failed = next((f.exception() for _, f in parts if f.exception() is not None), None)
            if failed is not None:
                combined.set_exception(failed)
                return
            out: list[CheckResult | str] = [""] * len(items)
            for share, future in parts:
                for i, result in zip(share, future.result(), strict=True):
                    out[i] = result
            combined.set_result(out)

        for _, future in parts:
            future.add_done_callback(collect)
        return combined

    def close(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=False, cancel_futures=True)
        self._pools = []


# -- input lines --------------------------------------------------------------------------------------------------


def too_long(where: str = "The line") -> InputError:
    """The refusal for a line over :data:`MAX_LINE_BYTES` (a reader skips such a line without holding it)."""
    return InputError(f"{where} is longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB; split the text.")


def parse_line(raw: bytes, where: str = "The line") -> CheckInput:
    """One JSON Lines input (``{"text": str, "context": [str], "user_inputs": [str]}``) or an InputError whose
    one sentence starts with ``where`` ("Line 4")."""
    if len(raw) > MAX_LINE_BYTES:
        raise too_long(where)
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where} is not valid UTF-8 (byte {exc.start + 1}); write the input as UTF-8.") from None
    if "\x00" in line:
        raise InputError(f"{where} holds a NUL byte; a line must be JSON text.")
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} is not JSON ({exc.msg} at column {exc.colno}).") from None
    if not isinstance(value, dict):
        raise InputError(f'{where} is a JSON {_kind(value)}, not an object such as {{"text": "..."}}.')
    if "text" not in value:
        raise InputError(f'{where} has no "text" field.')
    text = value["text"]
    if not isinstance(text, str):
        raise InputError(f'{where}: "text" is a JSON {_kind(text)}, not a string.')
    _check_text(where, '"text"', text)
    return CheckInput(text, _strings(where, value, "context"), _strings(where, value, "user_inputs"))


def _strings(where: str, value: dict[str, Any], key: str) -> tuple[str, ...]:
    """An optional list of strings (missing or null = empty)."""
    items = value.get(key)
    if items is None:
        return ()
    if not isinstance(items, list):
        raise InputError(f'{where}: "{key}" is a JSON {_kind(items)}, not a list of strings.')
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InputError(f'{where}: "{key}" item {i} is a JSON {_kind(item)}, not a string.')
        _check_text(where, f'"{key}" item {i}', item)
    return tuple(items)


def _check_text(where: str, name: str, text: str) -> None:
    # JSON escapes can carry what raw bytes could not: a NUL, or half of a surrogate pair that no UTF-8 output holds.
    if "\x00" in text:
        raise InputError(f"{where}: {name} holds a NUL character.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{where}: {name} holds a lone surrogate (\\ud800-\\udfff), which is not text.") from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)
