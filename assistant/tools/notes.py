"""Read-only search of the user's notes folder (``notes_dir``): Markdown and text files, found by meaning and words.

Each note is cut into passages (a paragraph under its heading; long ones split at sentences) and embedded with the
memory's embedder (the bundled MiniLM). The vectors are kept in a small SQLite index in the data dir, keyed by each
file's path, modification time and size, so a search re-embeds only the notes that changed since the last one; a
note that is removed leaves the index on the next search. The index holds snippets of the notes, so it lives in the
private data dir, never in the shared cache dir, and it is derived: deleting it only costs the next search a rebuild.

A passage's score is its cosine similarity to the query plus a small boost for the query's words it contains (names
and rare words count even when the embedder misses them). Nothing here writes to the notes folder.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import InputError, StorageError
from assistant.tools.notes_text import (
    MARKDOWN,
    NoteFile,
    Passage,
    keyword_share,
    note_files,
    passages,
    query_terms,
    read_note,
    snippet,
    word_list,
)

if TYPE_CHECKING:
    from assistant.config import Settings
    from storage.embedder import Embedder

Embed = Callable[[list[str]], list[list[float]]]

MAX_FILES = 10_000
KEYWORD_WEIGHT = 0.15
MIN_SCORE = 0.25  # below this a passage is noise (unrelated text scores about 0-0.15 with MiniLM)
PER_FILE = 2  # one long note may not fill every result
MAX_LIMIT = 20
EMBED_BATCH = 64
# The chunker and the embedder: a change to either rebuilds the index.
INDEX_VERSION = "2:all-MiniLM-L6-v2"


@dataclass(frozen=True, slots=True)
class Hit:
    path: str
    heading: str
    snippet: str
    score: float


@dataclass(slots=True)
class Refresh:
    """What one refresh of the index did."""

    embedded: list[str] = field(default_factory=list)  # files (re-)embedded now
    removed: list[str] = field(default_factory=list)  # files gone from the folder, dropped from the index
    skipped: list[str] = field(default_factory=list)  # binary or undecodable files (too-large ones never get here)
    unchanged: int = 0
    files: int = 0  # note files found in the folder (readable or not)
    notes: int = 0  # notes in the index: files read as text
    capped: bool = False  # more than MAX_FILES notes: only the first were indexed


# -------------------------------------------------------------------------------------------------------------
# The index

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    status TEXT NOT NULL, run INTEGER NOT NULL, passages INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, heading TEXT NOT NULL, text TEXT NOT NULL, words TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_path ON passages (path);
"""

_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    # A search given up on by its timeout keeps indexing in its thread; the next one waits for it, not beside it.
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path.resolve(), threading.Lock())


class NotesIndex:
    """The index of one notes folder, in one SQLite file; a different folder or version starts it afresh."""

    def __init__(self, root: Path, db_path: Path, embed: Embed) -> None:
        self.root = root
        self.db_path = db_path
        self.embed = embed

    def _connect(self) -> sqlite3.Connection:
        from storage.paths import ensure_private_dir, make_private

        ensure_private_dir(self.db_path.parent)
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            make_private(self.db_path)
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("root") != str(self.root) or meta.get("version") != INDEX_VERSION:
                # Another folder, or an index an older version wrote (its tables may differ): start afresh.
                with conn:
                    conn.execute("DROP TABLE IF EXISTS passages")
                    conn.execute("DROP TABLE IF EXISTS files")
                    conn.execute("DELETE FROM meta")
                conn.executescript(_SCHEMA)
                with conn:
                    conn.executemany(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("root", str(self.root)), ("version", INDEX_VERSION), ("runs", "0")],
                    )
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise StorageError(f"The notes index {self.db_path} is busy; try again in a moment.") from exc
            # A damaged index (a crash mid-write, a stray file): it is derived, so start it again.
            try:
                self.db_path.unlink(missing_ok=True)
                return self._connect()
            except (OSError, sqlite3.DatabaseError) as again:
                raise StorageError(
                    f"The notes index {self.db_path} cannot be written ({again}); check the data directory."
                ) from again

    def refresh(self) -> Refresh:
        """Bring the index up to date with the folder: embed new and changed notes, drop removed ones."""
        with _lock_for(self.db_path):
            conn = self._open()
            try:
                return self._refresh(conn)
            finally:
                conn.close()

    def _refresh(self, conn: sqlite3.Connection) -> Refresh:
        report = Refresh()
        known = {row[0]: (row[1], row[2]) for row in conn.execute("SELECT path, mtime_ns, size FROM files")}
        found: dict[str, NoteFile] = {}
        for note in note_files(self.root):
            if len(found) >= MAX_FILES:
                report.capped = True
                break
            found[note.rel] = note
        report.files = len(found)
        gone = sorted(set(known) - set(found))
        if gone:
            with conn:
                conn.executemany("DELETE FROM passages WHERE path = ?", [(p,) for p in gone])
                conn.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in gone])
            report.removed = gone
        changed = [n for rel, n in found.items() if known.get(rel) != (n.mtime_ns, n.size)]
        report.unchanged = len(found) - len(changed)
        if changed:
            self._embed_changed(conn, changed, report)
        report.notes = int(conn.execute("SELECT COUNT(*) FROM files WHERE status = 'ok'").fetchone()[0])
        return report

    def _embed_changed(self, conn: sqlite3.Connection, changed: list[NoteFile], report: Refresh) -> None:
        with conn:
            run = int(conn.execute("SELECT value FROM meta WHERE key = 'runs'").fetchone()[0]) + 1
            conn.execute("UPDATE meta SET value = ? WHERE key = 'runs'", [str(run)])
        batch: list[tuple[NoteFile, str, list[Passage]]] = []
        for note in changed:
            text = read_note(note.path)
            if text is None:
                batch.append((note, "skipped", []))
                report.skipped.append(note.rel)
            else:
                batch.append((note, "ok", passages(text, note.rel.lower().endswith(MARKDOWN))))
                report.embedded.append(note.rel)
            if sum(len(parts) for _, _, parts in batch) >= EMBED_BATCH:
                self._write(conn, batch, run)
                batch = []
        if batch:
            self._write(conn, batch, run)

    def _write(self, conn: sqlite3.Connection, batch: list[tuple[NoteFile, str, list[Passage]]], run: int) -> None:
        """Embed and store a batch of notes in one transaction (a search cut short keeps what it finished)."""
        import numpy as np

        texts = [_embedding_text(note, part) for note, _, parts in batch for part in parts]
        vectors = np.asarray(self.embed(texts), dtype=np.float32) if texts else np.zeros((0, 0), np.float32)
        at = 0
        with conn:
            for note, status, parts in batch:
                conn.execute("DELETE FROM passages WHERE path = ?", [note.rel])
                conn.executemany(
                    "INSERT INTO passages (path, heading, text, words, vector) VALUES (?, ?, ?, ?, ?)",
                    [
                        (note.rel, p.heading, p.text, word_list(f"{note.rel} {p.heading} {p.text}"), vec.tobytes())
                        for p, vec in zip(parts, vectors[at : at + len(parts)], strict=True)
                    ],
                )
                at += len(parts)
                conn.execute(
                    "INSERT OR REPLACE INTO files (path, mtime_ns, size, status, run, passages) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [note.rel, note.mtime_ns, note.size, status, run, len(parts)],
                )

    def search(self, query: str, limit: int = 5) -> list[Hit]:
        """The best passages for ``query`` (the index as it is now: call ``refresh`` first)."""
        import numpy as np

        with _lock_for(self.db_path):
            conn = self._open()
            try:
                rows = conn.execute("SELECT path, heading, text, words, vector FROM passages ORDER BY id").fetchall()
            finally:
                conn.close()
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(row[4] for row in rows), dtype=np.float32).reshape(len(rows), -1)
        query_vector = np.asarray(self.embed([query])[0], dtype=np.float32)
        terms = query_terms(query)
        scores = matrix @ query_vector
        if terms:
            scores = scores + KEYWORD_WEIGHT * np.array([keyword_share(terms, row[3]) for row in rows], np.float32)
        hits: list[Hit] = []
        per_file: dict[str, int] = {}
        for at in np.argsort(-scores, kind="stable"):
            score = float(scores[at])
            if score < MIN_SCORE or len(hits) >= limit:
                break
            path, heading, text = rows[at][:3]
            if per_file.get(path, 0) >= PER_FILE:
                continue
            per_file[path] = per_file.get(path, 0) + 1
            hits.append(Hit(path, heading, snippet(text, terms), round(score, 3)))
        return hits


def _embedding_text(note: NoteFile, part: Passage) -> str:
    # The heading (or, without one, the file's name) says what a short paragraph is about.
    title = part.heading or Path(note.rel).stem.replace("-", " ").replace("_", " ")
    return f"{title}\n{part.text}"


# -------------------------------------------------------------------------------------------------------------
# The tool's work

_EMBEDDERS: dict[int, Embedder] = {}
_EMBEDDERS_GUARD = threading.Lock()


def shared_embedder(threads: int) -> Embedder:
    """One embedder per process (it loads on first use, about a second; the ONNX export is shared with memory)."""
    from storage.embedder import Embedder

    with _EMBEDDERS_GUARD:
        if threads not in _EMBEDDERS:
            _EMBEDDERS[threads] = Embedder(threads=threads)
        return _EMBEDDERS[threads]


def notes_root(settings: Settings, home: Path) -> Path:
    """The configured notes folder; InputError (one sentence, saying how to set it) when none is usable."""
    from storage.paths import settings_file

    if not settings.notes_dir:
        raise InputError(
            'No notes folder is set: add notes_dir = "~/notes" (your folder of Markdown or text notes) to '
            f"{settings_file(home)}, or set ASSISTANT_NOTES_DIR."
        )
    root = Path(settings.notes_dir).expanduser()
    if not root.is_dir():
        raise InputError(
            f"The notes folder {root} (notes_dir) does not exist or is not a folder; create it or change notes_dir "
            f"in {settings_file(home)}."
        )
    return root.resolve()


def search(settings: Settings, home: Path, query: str, limit: int = 5, embed: Embed | None = None) -> str:
    """Search the notes folder and say what was found, as text for the user and the model."""
    from storage.paths import notes_index_path

    query = " ".join(query.split())
    if not query:
        raise InputError("Nothing to search for: give a few words saying what the note is about.")
    limit = max(1, min(limit, MAX_LIMIT))
    root = notes_root(settings, home)
    index = NotesIndex(root, notes_index_path(home), embed or shared_embedder(settings.embedder_threads).embed)
    report = index.refresh()
    if report.notes == 0:
        return f"The notes folder {root} holds no Markdown or text notes (.md, .markdown, .txt) to search."
    hits = index.search(query, limit)
    capped = f" (only the first {MAX_FILES:,} notes are searched)" if report.capped else ""
    if not hits:
        return f'Nothing in your {report.notes} notes in {root} matches "{query}"{capped}.'
    lines = [f'{len(hits)} passage{"s" if len(hits) != 1 else ""} from your notes in {root} for "{query}"{capped}:']
    for n, hit in enumerate(hits, start=1):
        where = f"{hit.path}, {hit.heading}" if hit.heading else hit.path
        lines.append(f"{n}. {where} (score {hit.score:.2f})\n   {hit.snippet}")
    return "\n".join(lines)
