"""`assistant memory`: remembered facts, search over earlier conversations, index status and rebuild."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.output import emit_json, note, print_table, progress, to_json
from assistant.errors import InputError, StorageError

if TYPE_CHECKING:
    from storage.db import Store
    from storage.memory import Memory

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
SNIPPET_CHARS = 160


@click.group()
def memory() -> None:
    """Remembered facts, search over earlier conversations, index status and rebuild."""


# -- facts ----------------------------------------------------------------------------------------------------


@memory.command()
@click.argument("text", nargs=-1, required=True)
@json_option
def remember(text: tuple[str, ...], as_json: bool) -> None:
    """Remember TEXT as a fact: it goes into every prompt while memory is on."""
    from assistant.app_store import open_store
    from storage.facts import add_fact, list_facts

    with open_store() as store:
        fact_id = add_fact(store, " ".join(text))
        fact = next(f for f in list_facts(store) if f.id == fact_id)
    if as_json:
        emit_json(fact.to_dict())
    else:
        note(f"Remembered fact {fact.id}: {fact.text}")
    from assistant.sensitive import save_warning

    if warning := save_warning(fact.text, fact.id):
        note(f"Warning: {warning}")


@memory.command()
@click.option("--filter", "-f", "query", default="", help="Only facts containing this.")
@json_option
def facts(query: str, as_json: bool) -> None:
    """List remembered facts, newest first."""
    from assistant.app_store import open_store
    from storage.facts import list_facts

    with open_store() as store:
        found = list_facts(store, query)
    if as_json:
        emit_json([f.to_dict() for f in found])
        return
    if not found:
        note("No facts match." if query else 'No facts yet; `assistant memory remember "..."` adds one.')
        return
    from storage.transfer import human_time

    print_table(["#id", "fact", "added"], [(f.id, f.text, human_time(f.created_at, local=True)) for f in found])


@memory.command()
@click.argument("fact_id", metavar="FACT_ID", type=int)
@json_option
def forget(fact_id: int, as_json: bool) -> None:
    """Forget one remembered fact."""
    from assistant.app_store import open_store
    from assistant.forget import forget_fact

    with open_store() as store:
        forgotten = forget_fact(store, fact_id)
    if as_json:
        emit_json({"forgotten": fact_id, "adapters_off": list(forgotten.adapters_off)})
    else:
        note(f"Forgot fact {fact_id}.")
        if forgotten.notice:
            note(forgotten.notice)


# -- search ---------------------------------------------------------------------------------------------------


@contextmanager
def open_memory_store() -> Iterator[tuple[Store, Memory, Path]]:
    """The store and the memory over it (closed together)."""
    from assistant.app_store import open_store
    from assistant.config import data_dir, load_settings
    from assistant.session import open_memory

    home = data_dir()
    settings = load_settings(home)
    with open_store(home) as store:
        try:
            mem = open_memory(store, home, settings)
        except Exception as exc:
            raise StorageError(f"The memory could not be opened ({exc}); `assistant doctor` may say why.") from exc
        try:
            yield store, mem, home
        finally:
            mem.close()


def read_queries(data: bytes) -> list[tuple[str, int | None]]:
    """JSON Lines of {"query": str, "k"?: int}; every line is checked before any search runs."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError('The queries on stdin are not UTF-8 text; send JSON Lines like {"query": "..."}.') from None
    queries: list[tuple[str, int | None]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            item = None
        k = item.get("k") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("query"), str)
            or not item["query"].strip()
            or (k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1))
        ):
            raise InputError(
                f'Line {number} of the queries is not a JSON object with a non-empty "query" string '
                '(and an optional positive integer "k"); fix it and run again.'
            )
        queries.append((item["query"], k))
    return queries


def _catch_up(mem: Memory, mode: str) -> None:
    """Index what `assistant chat` left queued (it indexes on its next call), so a search finds it by meaning too."""
    if mode == "lexical":
        return
    try:
        with ProgressBar("Indexing new messages") as bar:
            mem.index_pending(on_progress=bar)
    except Exception as exc:  # the search still runs, on what is indexed (and by words)
        note(f"New messages could not be indexed for memory ({exc}); `assistant memory reindex` may help.")


def _search(mem: Memory, query: str, k: int, mode: str) -> list[dict[str, Any]]:
    try:
        hits = mem.search(query, k, mode=mode)
    except Exception as exc:
        if mode == "lexical":
            raise StorageError(f"Memory search failed ({exc}); `assistant memory reindex` rebuilds the index.") from exc
        note(f"Search by meaning failed ({exc}); showing word matches only. `assistant memory reindex` may help.")
        hits = mem.search(query, k, mode="lexical")
    return [h.to_dict() for h in hits]


@memory.command()
@click.argument("query")
@click.option("--k", "-k", "k", type=click.IntRange(min=1, max=100), default=5, show_default=True, help="Most hits.")
@click.option(
    "--mode",
    type=click.Choice(["hybrid", "vector", "lexical"]),
    default="hybrid",
    show_default=True,
    help="By meaning and words, by meaning only, or by words only.",
)
@json_option
def search(query: str, k: int, mode: str, as_json: bool) -> None:
    """Search earlier conversations for QUERY (best first).

    With `-` as QUERY, read JSON Lines {"query": "...", "k": N} from stdin and write one line
    {"query": ..., "results": [...]} per query, loading the embedder once.
    """
    if query == "-":
        queries = read_queries(sys.stdin.buffer.read())
        with open_memory_store() as (_, mem, _home):
            _catch_up(mem, mode)
            for text, line_k in queries:
                click.echo(to_json({"query": text, "results": _search(mem, text, line_k or k, mode)}, indent=None))
        return
    if not query.strip():
        raise InputError("Nothing to search for: give a word or phrase (or `-` to read JSON Lines from stdin).")
    with open_memory_store() as (_, mem, _home):
        _catch_up(mem, mode)
        results = _search(mem, query, k, mode)
    if as_json:
        emit_json(results)
        return
    if not results:
        note(f"Nothing in memory matches {query!r}.")
        return
    from storage.transfer import human_time

    def snippet(text: str) -> str:
        flat = " ".join(text.split())
        return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"

    print_table(
        ["#score", "#conv", "role", "when", "text"],
        [
            (
                f"{r['score']:.3f}",
                r["conversation_id"],
                r["role"],
                human_time(r["created_at"], local=True),
                snippet(r["text"]),
            )
            for r in results
        ],
    )


# -- the index ------------------------------------------------------------------------------------------------


class ProgressBar:
    """Adapts Memory's ``on_progress(done, total)`` to the CLI's progress bar, opened at the first report."""

    def __init__(self, description: str) -> None:
        self.description = description
        self._stack = ExitStack()
        self._advance: Any = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if self._advance is None:
            self._advance = self._stack.enter_context(progress(total, self.description))
        self._advance(done - self._done)
        self._done = done

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


@memory.command()
@json_option
def reindex(as_json: bool) -> None:
    """Rebuild the memory index from the stored conversations."""
    with open_memory_store() as (_, mem, _home), ProgressBar("Indexing") as bar:
        count = mem.reindex(on_progress=bar)
    if as_json:
        emit_json({"indexed": count})
    else:
        note(f"Indexed {count} message{'s' * (count != 1)}.")


def _size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@memory.command()
@json_option
def status(as_json: bool) -> None:
    """Indexed and pending messages, facts, and the index's size on disk."""
    from assistant.app_store import open_store
    from assistant.config import data_dir, load_settings, memory_dir
    from storage.memory import PENDING

    home = data_dir()
    settings = load_settings(home)
    with open_store(home) as store, store.guard() as db:
        indexed = int(db.execute("SELECT count(*) FROM vector_indexed").fetchone()[0])
        pending = int(db.execute(f"SELECT count(*) FROM messages m WHERE {PENDING}").fetchone()[0])
        fact_count = int(db.execute("SELECT count(*) FROM facts").fetchone()[0])
    index_dir = memory_dir(home)
    size = _size(index_dir)
    info: dict[str, object] = {
        "enabled": settings.memory,
        "indexed": indexed,
        "pending": pending,
        "facts": fact_count,
        "index_bytes": size,
        "index_path": str(index_dir),
    }
    if as_json:
        emit_json(info)
        return
    print_table(
        ["what", "value"],
        [
            ("memory", "on" if settings.memory else "off (settings.toml: memory = false)"),
            ("indexed messages", indexed),
            ("pending messages", pending),
            ("facts", fact_count),
            ("index on disk", f"{size / 1_048_576:.1f} MB at {index_dir}"),
        ],
    )
