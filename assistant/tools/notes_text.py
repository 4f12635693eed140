"""A notes folder as text: which files are notes, how a note is cut into passages, and the words of a query.

Pure functions over files and strings (no index, no embedder): ``notes`` builds its search on them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".md", ".markdown", ".txt")
MARKDOWN = (".md", ".markdown")
MAX_FILE_BYTES = 1_000_000  # a note past this is an export or a log, not a note: skipped
CHUNK_CHARS = 1000  # about the embedder's 256-token window
SHORT_CHARS = 50  # a passage this short ("See also:", a date) joins the next one under the same heading
SNIPPET_CHARS = 300

_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    "the and for with what where when which who how that this these those from about into over under are was were "
    "has have had not but you your my our their its can could would should did does any all some notes note".split()
)


@dataclass(frozen=True, slots=True)
class NoteFile:
    rel: str  # posix path relative to the notes folder
    path: Path
    mtime_ns: int
    size: int


@dataclass(frozen=True, slots=True)
class Passage:
    heading: str  # "Recipes > Sauces"; "" before the first heading or in a text file
    text: str


# -------------------------------------------------------------------------------------------------------------
# Files and passages


def note_files(root: Path) -> Iterator[NoteFile]:
    """The notes under ``root``, sorted: Markdown and text files, not hidden, not in hidden folders, not too large.
    Unreadable folders are passed over; symlinked folders are not followed (no loops, no escaping the folder)."""
    for folder, dirs, files in os.walk(root, onerror=lambda _exc: None):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(SUFFIXES):
                continue
            path = Path(folder, name)
            try:
                stat = path.stat()
            except OSError:
                continue
            if not path.is_file() or stat.st_size > MAX_FILE_BYTES:
                continue
            yield NoteFile(path.relative_to(root).as_posix(), path, stat.st_mtime_ns, stat.st_size)


def read_note(path: Path) -> str | None:
    """The note's text, or None when it is binary (a NUL byte) or not UTF-8 text."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _split_long(text: str) -> list[str]:
    """A passage cut into pieces of at most CHUNK_CHARS, at sentence ends where it can be."""
    if len(text) <= CHUNK_CHARS:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > CHUNK_CHARS:  # one endless sentence: cut at a space
            cut = sentence.rfind(" ", 0, CHUNK_CHARS)
            cut = cut if cut > CHUNK_CHARS // 2 else CHUNK_CHARS
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > CHUNK_CHARS:
            pieces.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return [p for p in pieces if p]


def _front_matter_end(lines: list[str]) -> int:
    """The first line after a YAML front matter block (``---`` ... ``---`` at the top), else 0."""
    if lines and lines[0].strip() == "---":
        for at, line in enumerate(lines[1:60], start=1):
            if line.strip() in ("---", "..."):
                return at + 1
    return 0


def passages(text: str, markdown: bool = True) -> list[Passage]:
    """A note cut into passages: paragraphs (blank-line separated) under their Markdown headings; a fenced code
    block stays whole; very short paragraphs join the next one, long ones are split at sentences."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if markdown:
        lines = lines[_front_matter_end(lines) :]
    headings: list[str] = []
    out: list[Passage] = []
    paragraph: list[str] = []
    in_fence = False

    def flush() -> None:
        body = "\n".join(paragraph).strip()
        paragraph.clear()
        if not body:
            return
        heading = " > ".join(h for h in headings if h)
        if out and out[-1].heading == heading and len(out[-1].text) < SHORT_CHARS:
            if len(out[-1].text) + 2 + len(body) <= CHUNK_CHARS:
                out[-1] = Passage(heading, f"{out[-1].text}\n\n{body}")
                return
        out.extend(Passage(heading, piece) for piece in _split_long(body))

    for line in lines:
        if markdown and _FENCE.match(line):
            in_fence = not in_fence
            paragraph.append(line)
            continue
        if in_fence:
            paragraph.append(line)
            continue
        heading = _HEADING.match(line) if markdown else None
        if heading:
            flush()
            level = len(heading.group(1))
            headings = (headings + [""] * level)[: level - 1] + [heading.group(2).strip()]
        elif not line.strip():
            flush()
        else:
            paragraph.append(line)
    flush()
    return out


# -------------------------------------------------------------------------------------------------------------
# Words


def _stem(word: str) -> str:
    """A plural made singular, roughly ("tomatoes", "tomato"; "berries", "berry"): enough for a keyword match."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith("ss"):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("es") and word[:-2].endswith(("s", "x", "ch", "sh", "o")):
        return word[:-2]
    return word[:-1]


def query_terms(query: str) -> list[str]:
    """The query's words that say something (not stopwords, at least three letters or a number), stemmed."""
    words = [w for w in _WORD.findall(query.lower()) if (len(w) >= 3 or w.isdigit()) and w not in _STOPWORDS]
    return list(dict.fromkeys(_stem(w) for w in words))


def word_list(text: str) -> str:
    """The distinct words of ``text``, plurals folded, as " a b c " (kept with each passage: splitting every passage
    at search time was most of a search's time)."""
    return " " + " ".join(dict.fromkeys(_stem(w) for w in _WORD.findall(text.lower()))) + " "


def keyword_share(terms: list[str], words: str) -> float:
    """The share of the query's words found in a passage's ``word_list``."""
    if not terms:
        return 0.0
    return sum(f" {term} " in words for term in terms) / len(terms)


def snippet(text: str, terms: list[str], limit: int = SNIPPET_CHARS) -> str:
    """The passage on one line, cut to ``limit`` around the first query word it holds."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    lower = line.lower()
    starts = [m.start() for term in terms if (m := re.search(rf"\b{re.escape(term)}", lower))]
    start = max(0, min(starts) - limit // 4) if starts else 0
    start = min(start, len(line) - limit)
    if start > 0:
        space = line.find(" ", start)
        start = space + 1 if 0 <= space < start + 30 else start
    piece = line[start : start + limit]
    if start + limit < len(line):
        piece = piece.rsplit(" ", 1)[0] + "…"
    return ("…" + piece) if start > 0 else piece
