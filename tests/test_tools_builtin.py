"""The built-in tools (now, calculate, search_notes, remember), loaded and called through the real registry.

The notes search runs on a real folder of real files with the real bundled embedder; what is re-indexed is read
from the index's own tables, never from timings. The clock is fixed by replacing the tool's one source of "now".
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assistant.config import Settings, load_settings
from assistant.memory_prompt import remember_confirmation
from assistant.tools import builtin, notes, notes_text
from assistant.tools.registry import Tools, load_tools
from storage.db import open_store
from storage.embedder import Embedder
from storage.facts import list_facts
from storage.paths import notes_index_path


def tools_for(home: Path) -> Tools:
    return load_tools(load_settings(home), home, entry_points=False)


@pytest.fixture
def tools(home: Path) -> Iterator[Tools]:
    with tools_for(home) as loaded:
        yield loaded


def test_builtins_register_through_the_plugin_hook(tools: Tools) -> None:
    (info,) = [p for p in tools.plugins() if p.name == "builtin"]
    assert info.status == "loaded" and info.error is None
    assert sorted(info.tools) == ["calculate", "now", "remember", "search_notes"]
    by_name = {t.name: t for t in tools.list()}
    assert [name for name, t in by_name.items() if t.side_effects] == ["remember"]
    assert all(t.source == "builtin" and t.description for t in by_name.values())
    assert by_name["calculate"].parameters["required"] == ["expression"]
    assert by_name["search_notes"].parameters["properties"]["limit"]["default"] == 5
    assert by_name["now"].parameters["required"] == []
    assert "IANA" in by_name["now"].parameters["properties"]["timezone"]["description"]
    assert by_name["search_notes"].timeout > by_name["calculate"].timeout  # the first search indexes the folder


# -------------------------------------------------------------------------------------------------------------
# calculate


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("(2 + 3) * 4", "20"),
        ("2^10", "1024"),
        ("2^10 + 1", "1025"),  # a power, bound as tightly as **, not Python's xor
        ("2^3^2", "512"),
        ("2 ** 0.5 * 2 ** 0.5", "2"),
        ("0.1 + 0.2", "0.3"),
        ("10 / 4", "2.5"),
        ("7 // 2", "3"),
        ("-7 % 3", "2"),
        ("-2 ** 2", "-4"),
        ("sqrt(16) + log(8, 2) + log10(1000)", "10"),
        ("round(2.345, 2)", "2.35"),
        ("floor(2.7) + ceil(2.1) + abs(-1)", "6"),
        ("min(3, 1, 2) + max(3, 1, 2)", "4"),
        ("cos(pi)", "-1"),
        ("exp(1) - e", "0"),
        ("2 × 3 ÷ 4 =", "1.5"),
        ("2 ** 100", "1267650600228229401496703205376"),
    ],
)
def test_calculate(tools: Tools, expression: str, result: str) -> None:
    called = tools.call("calculate", {"expression": expression})
    assert called.ok, called.error
    assert called.content.rsplit(" = ", 1)[1] == result


@pytest.mark.parametrize(
    ("expression", "sentence"),
    [
        ("2 +", "The expression is incomplete: it ends before its last number."),
        ("(2 + 3", "The expression is incomplete: a parenthesis is not closed."),
        ("2 3", "The expression is not valid arithmetic"),
        ("1 / 0", "Division by zero is undefined."),
        ("5 % 0", "Division by zero is undefined."),
        ("x + 1", "Unknown name 'x'"),
        ("sqrt", "sqrt is a function: write sqrt(x)"),
        ("foo(2)", "Unknown function 'foo'"),
        ("__import__('os')", "Unknown function '__import__'"),
        ("(1).__class__", "The calculator does arithmetic only: no attribute access"),
        ("[1, 2][0]", "The calculator does arithmetic only: no indexing"),
        ("1 if 2 else 3", "no if/else"),
        ("2 < 3", "no comparisons"),
        ("1 << 10000", "Only + - * / // % ** (or ^) are allowed"),
        ("'a' * 10", "numbers only, not text"),
        ("True + 1", "numbers only, not true/false"),
        ("9 ** 9 ** 9", "too large"),  # refused before it is computed
        ("10 ** 2000", "too large"),
        ("1e308 * 10", "too large"),
        ("exp(1000)", "too large"),
        ("sqrt(-1)", "outside what its function or power accepts"),
        ("(-8) ** 0.5", "outside what its function or power accepts"),
        ("log(0)", "outside what its function or power accepts"),
        ("min()", "A function got the wrong number of arguments"),
        ("round(2.5, ndigits=1)", "plain arguments"),
        ("", "Nothing to calculate"),
        ("1+" * 300 + "1", "at most 500"),
    ],
)
def test_calculate_refuses_in_one_sentence(tools: Tools, expression: str, sentence: str) -> None:
    called = tools.call("calculate", {"expression": expression})
    assert not called.ok
    assert sentence in (called.error or "")
    assert "\n" not in (called.error or "") and "Traceback" not in (called.error or "")


@pytest.mark.parametrize(
    "template",
    [
        "__import__('os').system('touch {path}')",
        "open('{path}', 'w').write('x')",
        "().__class__.__base__.__subclasses__()",
        "(lambda: __import__('os').system('touch {path}'))()",
        "[c for c in ().__class__.__base__.__subclasses__()]",
        "exec(\"open('{path}', 'w')\")",
        "eval(\"open('{path}', 'w')\")",
    ],
)
def test_calculate_never_runs_code(tools: Tools, tmp_path: Path, template: str) -> None:
    target = tmp_path / "pwned"
    called = tools.call("calculate", {"expression": template.format(path=target)})
    assert not called.ok and called.error
    assert not target.exists()


# -------------------------------------------------------------------------------------------------------------
# now

INSTANT = datetime(2026, 3, 3, 23, 30, 15, tzinfo=UTC)  # a Tuesday in UTC, already Wednesday east of it


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builtin, "_utc_now", lambda: INSTANT)


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        (
            "Asia/Tokyo",
            "Wednesday, 4 March 2026, 08:30:15 in Asia/Tokyo (JST, UTC+09:00); ISO 8601: 2026-03-04T08:30:15+09:00",
        ),
        ("America/New_York", "Tuesday, 3 March 2026, 18:30:15 in America/New_York (EST, UTC-05:00)"),
        ("utc", "Tuesday, 3 March 2026, 23:30:15 in UTC"),
        ("europe/paris", "Wednesday, 4 March 2026, 00:30:15 in Europe/Paris (CET, UTC+01:00)"),
        ("tokyo", "in Asia/Tokyo"),  # a bare city, as a small model tends to say it
        ("new york", "in America/New_York"),
    ],
)
def test_now_in_a_time_zone(tools: Tools, fixed_clock: None, zone: str, expected: str) -> None:
    called = tools.call("now", {"timezone": zone})
    assert called.ok, called.error
    assert called.content.startswith(expected) or expected in called.content


def test_now_local_time_follows_the_system_zone(
    tools: Tools, fixed_clock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        monkeypatch.setenv("TZ", "Europe/Berlin")
        time.tzset()
        called = tools.call("now", {})
        assert called.ok, called.error
        assert called.content.startswith("Wednesday, 4 March 2026, 00:30:15 local time (CET, UTC+01:00)")
        # The explicit path (`/tool now`) with no text is the local time too.
        assert tools.parse_text("now", "") == {}
        assert tools.parse_text("now", "Asia/Tokyo") == {"timezone": "Asia/Tokyo"}
    finally:
        monkeypatch.delenv("TZ", raising=False)
        time.tzset()


@pytest.mark.parametrize(
    ("zone", "sentence"),
    [
        ("Europe/Berln", "There is no time zone 'Europe/Berln' (did you mean Europe/Berlin?); give an IANA name"),
        ("Mars/Olympus_Mons", "There is no time zone 'Mars/Olympus_Mons'; give an IANA name such as Europe/Paris"),
        ("../../../etc/passwd", "There is no time zone '../../../etc/passwd'"),
        ("x" * 200, "IANA names are short"),
    ],
)
def test_now_refuses_an_unknown_zone(tools: Tools, zone: str, sentence: str) -> None:
    called = tools.call("now", {"timezone": zone})
    assert not called.ok
    assert sentence in (called.error or "")


# -------------------------------------------------------------------------------------------------------------
# remember


def test_remember_stores_a_fact_only_when_confirmed(tools: Tools, home: Path, settings: Settings) -> None:
    refused = tools.call("remember", {"fact": "I am vegetarian."})
    assert not refused.ok and "not confirmed" in (refused.error or "")
    said_no = tools.call("remember", {"fact": "I am vegetarian."}, confirm=lambda tool, args: False)
    assert not said_no.ok
    with open_store(home) as store:
        assert list_facts(store) == []

    asked: list[tuple[str, dict[str, object]]] = []

    def confirm(tool: object, arguments: dict[str, object]) -> bool:
        asked.append((getattr(tool, "name", ""), arguments))
        return True

    stored = tools.call("remember", tools.parse_text("remember", "I am   vegetarian."), confirm=confirm)
    assert stored.ok, stored.error
    assert asked == [("remember", {"fact": "I am   vegetarian."})]
    with open_store(home) as store:
        (fact,) = list_facts(store)
    assert fact.text == "I am vegetarian."
    # The same sentence as `/remember` answers with.
    assert stored.content == remember_confirmation("I am vegetarian.", fact.id, settings.memory)


def test_remember_refuses_what_remember_refuses(tools: Tools, home: Path) -> None:
    yes = lambda tool, args: True  # noqa: E731
    too_long = tools.call("remember", {"fact": "word " * 500}, confirm=yes)
    assert not too_long.ok and "at most 2,000 characters" in (too_long.error or "")
    empty = tools.call("remember", {"fact": "   "}, confirm=yes)
    assert not empty.ok and "Nothing to remember" in (empty.error or "")
    with open_store(home) as store:
        assert list_facts(store) == []
    secret = tools.call("remember", {"fact": "My wifi password is hunter2-Blue-42"}, confirm=yes)
    assert secret.ok and "looks like it holds" in secret.content


# -------------------------------------------------------------------------------------------------------------
# search_notes

PASTA = """---
title: Pasta
tags: [food]
---
# Pasta

## Tomato sauce

Simmer crushed tomatoes with garlic and olive oil for twenty minutes, then tear in fresh basil.

## Carbonara

Whisk eggs with pecorino, then toss them with hot spaghetti and crisp guanciale off the heat.
"""

CAR = """# Car

The next service of the car is due in March; the garage is on Elm Street.
"""

GARDEN = """The roses by the fence need pruning in late winter, before new growth starts.

Water the tomato plants deeply twice a week during the hot summer months.
"""


@pytest.fixture
def notes_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> Path:
    """A real notes folder: Markdown, text, and what must be passed over (binary, undecodable, huge, hidden)."""
    folder = tmp_path / "my notes"
    (folder / "recipes").mkdir(parents=True)
    (folder / "recipes" / "pasta.md").write_text(PASTA, encoding="utf-8")
    (folder / "car.markdown").write_text(CAR, encoding="utf-8")
    (folder / "garden.txt").write_text(GARDEN, encoding="utf-8")
    (folder / "photo.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (folder / "latin1.txt").write_bytes("Crème brûlée au café".encode("latin-1"))
    (folder / "huge.md").write_text("The car needs new tyres. " * (notes_text.MAX_FILE_BYTES // 20), encoding="utf-8")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "diary.md").write_text("The car service is due in March.", encoding="utf-8")
    (folder / "recipes" / ".draft.md").write_text("Tomato sauce draft.", encoding="utf-8")
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4 car service")
    monkeypatch.setenv("ASSISTANT_NOTES_DIR", str(folder))
    # The session's embedder, loaded once for the run (outside any tool's timeout): the same bundled model the
    # tool would load itself.
    monkeypatch.setattr(notes, "shared_embedder", lambda threads: embedder)
    return folder


def index_rows(home: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(notes_index_path(home))
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def search(tools: Tools, query: str, **more: object) -> str:
    called = tools.call("search_notes", {"query": query, **more})
    assert called.ok, called.error
    return called.content


def test_search_notes_finds_a_passage_by_meaning(home: Path, notes_folder: Path) -> None:
    with tools_for(home) as tools:
        found = search(tools, "how long should the sauce cook")
        first = found.splitlines()[1]
        assert first.startswith("1. recipes/pasta.md, Pasta > Tomato sauce (score ")
        assert "Simmer crushed tomatoes with garlic" in found
        # No word in common with the note: found by meaning alone.
        vehicle = search(tools, "when is the vehicle maintenance")
        assert vehicle.splitlines()[1].startswith("1. car.markdown, Car (score ")
        assert search(tools, "pruning flowers").splitlines()[1].startswith("1. garden.txt (score ")
        assert "Nothing in your 3 notes" in search(tools, "quantum chromodynamics lecture")
        # What is passed over is never read into the index.
        files = dict(index_rows(home, "SELECT path, status FROM files"))
    assert files == {
        "recipes/pasta.md": "ok",
        "car.markdown": "ok",
        "garden.txt": "ok",
        "photo.md": "skipped",
        "latin1.txt": "skipped",
    }
    texts = " ".join(str(row[0]) for row in index_rows(home, "SELECT text FROM passages"))
    assert "title: Pasta" not in texts  # front matter is not a passage
    assert "tyres" not in texts and "draft" not in texts
    assert oct(notes_index_path(home).stat().st_mode & 0o777) == "0o600"
    assert notes_index_path(home).parent == home


def test_search_notes_reindexes_only_changed_notes(home: Path, notes_folder: Path) -> None:
    with tools_for(home) as tools:
        search(tools, "tomato sauce")
        before = index_rows(home, "SELECT path, run FROM files WHERE status = 'ok' ORDER BY path")
        assert before == [("car.markdown", 1), ("garden.txt", 1), ("recipes/pasta.md", 1)]
        pasta_ids = index_rows(home, "SELECT id FROM passages WHERE path = 'recipes/pasta.md' ORDER BY id")

        search(tools, "tomato sauce")  # nothing changed: nothing embedded again
        assert index_rows(home, "SELECT value FROM meta WHERE key = 'runs'") == [("1",)]

        with (notes_folder / "garden.txt").open("a", encoding="utf-8") as file:
            file.write("\nThe apple tree was planted in 2019 by my grandmother.\n")
        (notes_folder / "car.markdown").unlink()
        found = search(tools, "who planted the apple tree")
        after = index_rows(home, "SELECT path, run FROM files WHERE status = 'ok' ORDER BY path")
    assert after == [("garden.txt", 2), ("recipes/pasta.md", 1)]
    assert index_rows(home, "SELECT id FROM passages WHERE path = 'recipes/pasta.md' ORDER BY id") == pasta_ids
    assert index_rows(home, "SELECT COUNT(*) FROM passages WHERE path = 'car.markdown'") == [(0,)]
    assert found.splitlines()[1].startswith("1. garden.txt")
    assert "planted in 2019" in found


def test_search_notes_rebuilds_a_damaged_index(home: Path, notes_folder: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    notes_index_path(home).write_bytes(b"not a database at all" * 100)
    with tools_for(home) as tools:
        assert "recipes/pasta.md" in search(tools, "carbonara with eggs")


def test_search_notes_without_a_folder_says_how_to_set_one(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tools_for(home) as tools:
        called = tools.call("search_notes", {"query": "tomato"})
    assert not called.ok
    assert called.error == (
        f'No notes folder is set: add notes_dir = "~/notes" (your folder of Markdown or text notes) to '
        f"{home / 'settings.toml'}, or set ASSISTANT_NOTES_DIR."
    )
    monkeypatch.setenv("ASSISTANT_NOTES_DIR", str(tmp_path / "nowhere"))
    with tools_for(home) as tools:
        missing = tools.call("search_notes", {"query": "tomato"})
        empty_query = tools.call("search_notes", {"query": "  "})
    assert not missing.ok and "does not exist" in (missing.error or "")
    assert not empty_query.ok and "Nothing to search for" in (empty_query.error or "")


def test_notes_dir_setting_must_be_absolute(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.errors import InputError

    monkeypatch.setenv("ASSISTANT_NOTES_DIR", "notes")
    with pytest.raises(InputError, match="notes_dir.*absolute"):
        load_settings(home)
    monkeypatch.setenv("ASSISTANT_NOTES_DIR", "~/notes")
    assert load_settings(home).notes_dir == "~/notes"


def test_passages_follow_headings_paragraphs_and_code() -> None:
    text = (
        "---\ntitle: x\n---\nIntro line.\n\n# Trip\n\n## Packing\n\nPassport and tickets.\n\n"
        "```sh\necho one\n\necho two\n```\n\n# Budget\n\n" + "A sentence about money. " * 100
    )
    parts = notes_text.passages(text)
    assert parts[0] == notes_text.Passage("", "Intro line.")
    assert parts[1].heading == "Trip > Packing" and parts[1].text.startswith("Passport and tickets.")
    assert "echo one\n\necho two" in parts[1].text  # a short paragraph joins the next; a fence stays whole
    budget = [p for p in parts if p.heading == "Budget"]
    assert len(budget) > 1 and all(len(p.text) <= notes_text.CHUNK_CHARS for p in budget)
    # In a text file a '#' line is just a line.
    assert notes_text.passages("# not a heading\nbody", markdown=False) == [
        notes_text.Passage("", "# not a heading\nbody")
    ]


def test_note_files_skip_links_out_of_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.md").write_text("elsewhere", encoding="utf-8")
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("a", encoding="utf-8")
    os.symlink(outside, folder / "linked")
    assert [n.rel for n in notes_text.note_files(folder)] == ["a.md"]


def test_keyword_boost_counts_the_query_words_a_passage_holds() -> None:
    terms = notes_text.query_terms("Where are the tomatoes and berries on Elm Street?")
    assert terms == ["tomato", "berry", "elm", "street"]  # stopwords out, plurals folded
    assert notes_text.keyword_share(terms, notes_text.word_list("A tomato and a berry")) == 0.5
    assert notes_text.keyword_share(terms, notes_text.word_list("Elm Street: tomatoes, berries")) == 1.0
    assert notes_text.keyword_share(terms, notes_text.word_list("Nothing relevant; elmwood streets")) == 0.25
    # The snippet of a long passage starts near the first query word.
    text = "Filler words here. " * 40 + "The garage on Elm Street opens at nine." + " More filler." * 40
    cut = notes_text.snippet(text, terms)
    assert "Elm Street" in cut and cut.startswith("…") and len(cut) <= notes_text.SNIPPET_CHARS + 2


def test_another_notes_folder_or_index_version_starts_the_index_afresh(
    home: Path, notes_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tools_for(home) as tools:
        search(tools, "tomato sauce")
    other = tmp_path / "work notes"
    other.mkdir()
    (other / "standup.md").write_text("# Standup\n\nThe standup moved to 9:30 on Mondays.", encoding="utf-8")
    monkeypatch.setenv("ASSISTANT_NOTES_DIR", str(other))
    with tools_for(home) as tools:
        assert search(tools, "when is the team meeting").splitlines()[1].startswith("1. standup.md, Standup")
    assert index_rows(home, "SELECT path FROM files") == [("standup.md",)]
    # An index written by another version (other tables) is dropped, not misread.
    conn = sqlite3.connect(notes_index_path(home))
    with conn:
        conn.execute("UPDATE meta SET value = '0:old' WHERE key = 'version'")
        conn.execute("DROP TABLE passages")
        conn.execute("CREATE TABLE passages (id INTEGER PRIMARY KEY, path TEXT, vector BLOB)")
    conn.close()
    with tools_for(home) as tools:
        assert "standup.md" in search(tools, "standup time")
    assert index_rows(home, "SELECT value FROM meta WHERE key = 'version'") == [(notes.INDEX_VERSION,)]
