"""Schema migrations on a database written by an earlier version: every row, id, index and trigger survives."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from storage import migrations
from storage.db import Store, open_store
from storage.facts import RecallRecord, add_fact, list_facts, record_recalls
from storage.forgotten import list_forgotten

TABLES = ("conversations", "messages", "feedback", "facts", "recalls", "vector_indexed", "vector_tombstones", "models")


def before_ids_never_reused() -> list[tuple[str, migrations.Migration]]:
    names = [name for name, _ in migrations.MIGRATIONS]
    return migrations.MIGRATIONS[: names.index("m004_ids_never_reused")]


def old_database(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir written by the previous schema, with a bit of everything in it."""
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", before_ids_never_reused())
        with open_store(home) as store:
            autoincrement = store.db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'")
            assert autoincrement.fetchone()[0] == 0  # really the old schema
            first = store.create_conversation(model="smollm2")
            question = store.add_message(first, "user", "Where did I park the bicycle near the library?")
            reply = store.add_message(first, "assistant", "By the north entrance.", finish_reason="stop")
            store.set_feedback(reply, rating=1, better_answer="At the north entrance, by the bins.")
            second = store.create_conversation(source="import")
            for n in range(5):
                store.add_message(second, "user", f"Note {n} about tomatoes in the greenhouse.")
            newest = store.add_message(second, "assistant", "Noted.")
            fact = add_fact(store, "My bicycle is a green Batavus.", source_message_id=question)
            add_fact(store, "I grow tomatoes.")
            record_recalls(store, reply, [RecallRecord(question, None, 0.9, 0), RecallRecord(None, fact, None, 1)])
            with store.guard(write=True) as db:
                db.execute("INSERT INTO vector_indexed (message_id, indexed_at) VALUES (?, 'then')", [question])
                db.execute("INSERT INTO vector_indexed (message_id, indexed_at) VALUES (?, 'then')", [newest])
            store.add_model("mine", "/models/mine.gguf", "local")
            store.delete_message(newest)  # a tombstone waiting for the next index pass
        return home


def dump(store: Store, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table; only ``columns[table]`` when given (an old schema's columns)."""
    with store.guard() as db:
        return {
            table: db.execute(
                f"SELECT {', '.join(columns[table]) if columns else '*'} FROM {table} ORDER BY 1"
            ).fetchall()
            for table in TABLES
        }


def schema_objects(store: Store) -> set[tuple[str, str]]:
    with store.guard() as db:
        return {
            (kind, name)
            for kind, name in db.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
        }


def test_an_old_database_migrates_with_every_row_and_id_intact(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_database(home, monkeypatch)
    raw = sqlite3.connect(home / "assistant.db")
    old_rows = {table: raw.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in TABLES}
    old_columns = {table: [row[1] for row in raw.execute(f"PRAGMA table_info({table})")] for table in TABLES}
    old_objects = {
        (k, n) for k, n in raw.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
    }
    raw.close()
    assert old_rows["vector_tombstones"] and old_rows["recalls"] and old_rows["feedback"]

    with open_store(home) as store:
        assert dump(store, old_columns) == old_rows  # every row, with its id (later columns added empty)
        objects = schema_objects(store)
        assert old_objects <= objects  # every table, index and trigger (FTS and tombstones included) is back
        assert {
            ("table", "forgotten"),
            ("trigger", "messages_forgotten"),
            ("trigger", "conversations_forgotten"),
            ("trigger", "facts_forgotten"),
        } <= objects
        with store.guard() as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
            assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
            db.execute("INSERT INTO messages_fts(messages_fts) VALUES('integrity-check')")
            for table in ("conversations", "messages", "feedback", "facts"):
                create = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", [table]).fetchone()[0]
                assert "AUTOINCREMENT" in create, table
        assert [h.message_id for h in store.search("bicycle library")] == [old_rows["messages"][0][0]]
        with store.guard(write=True) as db:
            db.execute("INSERT INTO messages_fts(messages_fts) VALUES('rebuild')")
        assert [h.message_id for h in store.search("greenhouse tomatoes")] == [r[0] for r in old_rows["messages"][2:7]]

        # The triggers still work: cascades, the tombstone for an indexed message, the forgotten record.
        question = old_rows["messages"][0][0]
        store.delete_conversation(old_rows["conversations"][0][0])
        with store.guard() as db:
            assert db.execute("SELECT count(*) FROM feedback").fetchone()[0] == 0
            assert db.execute("SELECT count(*) FROM recalls").fetchone()[0] == 0
            tombstones = {r[0] for r in db.execute("SELECT message_id FROM vector_tombstones")}
        assert question in tombstones
        assert [f.source_message_id for f in list_facts(store)] == [None, None]  # ON DELETE SET NULL
        assert ("message", question) in {(r.kind, r.item_id) for r in list_forgotten(store)}

        # Ids are not handed out again: the highest one left, nor one deleted before the migration whose vectors
        # were still to go (its tombstone).
        highest = max(r[0] for r in old_rows["messages"])
        deleted_before = old_rows["vector_tombstones"][0][0]
        assert deleted_before == highest + 1
        second = old_rows["conversations"][1][0]
        store.delete_message(highest)
        assert store.add_message(second, "user", "after") == deleted_before + 1
    with open_store(home) as store:  # reopening applies nothing twice
        assert len(list(store.db["_migrations"].rows)) == len(migrations.MIGRATIONS)


def test_a_new_database_gets_the_same_schema_as_a_migrated_one(home: Path, tmp_path: Path, monkeypatch) -> None:
    old_database(tmp_path / "old", monkeypatch)
    with open_store(tmp_path / "old") as migrated, open_store(home) as fresh:
        assert schema_objects(migrated) == schema_objects(fresh)
        for table in ("conversations", "messages", "feedback", "facts"):
            columns = [sqlite_utils.Database(s.db.conn)[table].columns_dict for s in (migrated, fresh)]
            assert columns[0] == columns[1], table


def test_a_failed_rebuild_changes_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_database(home, monkeypatch)
    raw = sqlite3.connect(home / "assistant.db")
    before = {table: raw.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in TABLES}
    schema = raw.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    raw.close()

    def broken(create_sql: str, table: str, new_name: str) -> str | None:
        if table == "facts":  # the last table: the others are already rebuilt inside the transaction
            raise RuntimeError("simulated failure")
        return original(create_sql, table, new_name)

    original = migrations._with_autoincrement
    monkeypatch.setattr(migrations, "_with_autoincrement", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        Store(home / "assistant.db")
    raw = sqlite3.connect(home / "assistant.db")
    try:
        assert {table: raw.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in TABLES} == before
        assert raw.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == schema
    finally:
        raw.close()
