"""Export and import of conversations on a real SQLite store: the three formats, refusals, all-or-nothing writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import InputError, StorageError
from storage.db import Store, open_store
from storage.transfer import export_data, export_json, export_markdown, import_bytes, read_import

DATA = Path(__file__).parent / "data"


def seed(store: Store) -> int:
    """A conversation using every message field: timings, an incomplete reply, feedback."""
    cid = store.create_conversation(model="smollm2", created_at="2026-11-20T09:00:00.000+00:00")
    store.add_message(cid, "user", "What is the capital of Portugal?", created_at="2026-11-20T09:00:00.000+00:00")
    reply = store.add_message(
        cid,
        "assistant",
        "Lisbon.",
        created_at="2026-11-20T09:00:01.250+00:00",
        model="smollm2",
        adapter="lora-7",
        prompt_tokens=31,
        completion_tokens=3,
        ttft_ms=120.5,
        tokens_per_s=14.25,
        duration_ms=330.0,
        finish_reason="stop",
        complete=1,
        context_trimmed=1,
    )
    store.set_feedback(reply, rating=1, better_answer="Lisbon, on the Tagus.")
    store.add_message(cid, "user", "And of Spain?", created_at="2026-11-20T09:01:00.000+00:00")
    cut = store.add_message(
        cid,
        "assistant",
        "Mad",
        created_at="2026-11-20T09:01:00.500+00:00",
        model="smollm2",
        finish_reason="error",
        complete=0,
        error="The model failed while replying (boom); the partial reply was kept.",
    )
    store.set_feedback(cut, rating=-1)
    return cid


def comparable(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Conversations of an export without what an import may change (ids, source)."""
    out = []
    for conv in data["conversations"]:
        conv = {k: v for k, v in conv.items() if k not in ("id", "source")}
        conv["messages"] = [{k: v for k, v in m.items() if k != "id"} for m in conv["messages"]]
        out.append(conv)
    return out


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    tables = ["conversations", "messages", "feedback", "messages_fts"]
    return {t: store.db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in tables}


def test_own_json_round_trip_keeps_every_field(store: Store, tmp_path: Path) -> None:
    seed(store)
    exported = export_json(store)
    with open_store(tmp_path / "other") as other:
        result = import_bytes(other, exported.encode(), "export.json")
        assert result.format == "json"
        assert (len(result.conversation_ids), result.messages) == (1, 4)
        again = export_data(other)
    original = json.loads(exported)
    assert comparable(again) == comparable(original)
    assert again["conversations"][0]["source"] == "import:json"
    messages = original["conversations"][0]["messages"]
    assert messages[1]["tokens_per_s"] == 14.25 and messages[1]["better_answer"] == "Lisbon, on the Tagus."
    assert messages[3]["complete"] is False and messages[3]["rating"] == -1


def test_minimal_format(store: Store) -> None:
    result = import_bytes(store, (DATA / "minimal.json").read_bytes(), "minimal.json")
    assert (result.format, len(result.conversation_ids), result.messages) == ("minimal", 2, 4)
    lisbon, pancakes = (store.get_conversation(i) for i in result.conversation_ids)
    assert lisbon.title == "Lisbon trip" and lisbon.source == "import:minimal"
    assert pancakes.title == "A quick pancake recipe, please"  # untitled: named after the first question
    messages = store.messages(lisbon.id)
    assert [m.role for m in messages] == ["user", "assistant"]
    # "+02:00" is normalised to UTC so that conversations sort by time
    assert messages[1].created_at == "2026-05-01T10:00:05.000+00:00"
    assert lisbon.updated_at == "2026-05-01T10:00:05.000+00:00"
    assert [h.conversation_id for h in store.search("Alfama")] == [lisbon.id]


def test_chatgpt_format_takes_the_visible_branch(store: Store) -> None:
    result = import_bytes(store, (DATA / "chatgpt_conversations.json").read_bytes(), "conversations.json")
    assert result.format == "chatgpt"
    assert (len(result.conversation_ids), result.skipped) == (2, 1)  # the system-only one is skipped
    sourdough = store.get_conversation(result.conversation_ids[0])
    assert (sourdough.title, sourdough.model, sourdough.source) == ("Sourdough starter", "gpt-4o", "import:chatgpt")
    assert sourdough.created_at == "2026-01-01T00:00:00.000+00:00"
    messages = store.messages(sourdough.id)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "How often do I feed a sourdough starter?"),
        ("assistant", "Feed it once a day at room temperature."),
        ("user", "What about this jar?"),
        ("assistant", "That jar is big enough; leave room for it to double."),
    ]
    assert messages[0].created_at == "2026-01-01T00:00:00.250+00:00"
    assert messages[3].model == "gpt-4o-mini"
    assert not store.search("DISCARDED") and not store.search("TOOL OUTPUT") and not store.search("TOOL CALL")
    untitled = store.get_conversation(result.conversation_ids[1])
    assert untitled.title == "Translate 'good morning' to Portuguese"
    # a message without create_time takes the conversation's
    assert store.messages(untitled.id)[0].created_at == "2026-01-02T00:00:00.000+00:00"


def minimal(*conversations: Any) -> bytes:
    return json.dumps({"conversations": list(conversations)}).encode()


GOOD = {"title": "ok", "messages": [{"role": "user", "content": "hi", "created_at": "2026-01-01T00:00:00Z"}]}
BAD_ROLE = {
    "title": "x",
    "messages": [GOOD["messages"][0], {"role": "bot", "content": "b", "created_at": "2026-01-01"}],
}

MALFORMED = [
    (b"", "it is empty"),
    (b"  \n", "it is empty"),
    (bytes(range(256)) * 4, "binary data"),
    (b'{"conversations": []}\xff\xfe', "not UTF-8"),
    (b'{"conversations": [', "not valid JSON"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"chats": []}', "not a known conversation export"),
    (b"[1, 2]", "not a known conversation export"),
    (b'{"conversations": {}}', '"conversations" must be a list'),
    (minimal(GOOD, GOOD, BAD_ROLE), "conversation 3, message 2: role must be user or assistant"),
    (
        minimal({"messages": [{"role": "user", "content": "a", "created_at": "yesterday"}]}),
        "conversation 1, message 1: created_at 'yesterday' is not an ISO 8601 time",
    ),
    (minimal({"messages": [{"role": "user", "content": 5}]}), "conversation 1, message 1: content must be text"),
    (minimal({"messages": [{"role": "user", "content": "a\u0000b"}]}), "content holds binary data"),
    (b'{"conversations": [{"messages": [{"role": "user", "content": "\\ud800"}]}]}', "not valid Unicode"),
    (minimal("just text"), "conversation 1 must be an object"),
    (b'{"format": "assistant-history", "version": 2, "conversations": []}', "newer assistant"),
    (b'{"format": "other-tool", "conversations": []}', "not 'assistant-history'"),
    (
        b'{"format": "assistant-history", "version": 1, "conversations": [{"messages": '
        b'[{"role": "assistant", "content": "x", "created_at": "2026-01-01", "prompt_tokens": "many"}]}]}',
        "conversation 1, message 1: prompt_tokens must be a whole number",
    ),
    (b'[{"title": "t", "mapping": []}]', "conversation 1: mapping must be an object"),
    (b'[{"title": "t", "create_time": "monday", "mapping": {}}]', "create_time must be a Unix time"),
    (b'[{"mapping": {"a": {"parent": "zz", "children": []}}, "current_node": "a"}]', "'zz' is not in mapping"),
    (b'[{"mapping": {"a": {"parent": "a", "children": []}}, "current_node": "a"}]', "form a loop"),
]


@pytest.mark.parametrize(("raw", "expected"), MALFORMED, ids=[m[1][:40] for m in MALFORMED])
def test_malformed_file_is_refused_with_one_sentence_and_nothing_written(
    store: Store, raw: bytes, expected: str
) -> None:
    seed(store)
    before = snapshot(store)
    with pytest.raises(InputError) as caught:
        import_bytes(store, raw, "bad.json")
    message = str(caught.value)
    assert expected in message
    assert message.startswith("Cannot import bad.json: ") and message.endswith("nothing was imported.")
    assert "\n" not in message
    assert snapshot(store) == before


def test_import_is_one_transaction(store: Store) -> None:
    """A failure while writing (here the schema's CHECK on role) undoes the conversations written before it."""
    seed(store)
    before = snapshot(store)
    parsed = read_import((DATA / "minimal.json").read_bytes(), "minimal.json")
    parsed.conversations[1]["messages"][1]["role"] = "bot"
    with pytest.raises(StorageError):
        store.import_conversations(parsed.conversations)
    assert snapshot(store) == before


def test_markdown_export_is_readable(store: Store) -> None:
    cid = seed(store)
    text = export_markdown(store, cid)
    assert text.startswith("# What is the capital of Portugal?")
    assert "## You · 2026-11-20 09:00 UTC" in text
    assert "## Assistant · 2026-11-20 09:00 UTC · smollm2 · rated good" in text
    assert "> Lisbon, on the Tagus." in text
    assert "Incomplete reply (The model failed while replying (boom)" in text


@pytest.mark.slow
def test_huge_import(store: Store) -> None:
    """About 50 MB in the minimal format: parsed and written without trouble."""
    body = "lorem ipsum dolor sit amet " * 90  # ~2.4 kB
    conversations = [
        {
            "title": f"conversation {i}",
            "messages": [
                {"role": ("user", "assistant")[j % 2], "content": f"{body} n{i}x{j}", "created_at": "2026-01-01"}
                for j in range(10)
            ],
        }
        for i in range(2100)
    ]
    raw = minimal(*conversations)
    assert len(raw) > 50_000_000
    result = import_bytes(store, raw, "huge.json")
    assert (len(result.conversation_ids), result.messages) == (2100, 21000)
    assert [h.conversation_id for h in store.search("n2099x9")] == [result.conversation_ids[-1]]


def test_importing_the_same_history_twice_adds_nothing(store: Store) -> None:
    raw = (DATA / "minimal.json").read_bytes()
    first = import_bytes(store, raw, "minimal.json")
    before = snapshot(store)
    again = import_bytes(store, raw, "minimal.json")
    assert again.conversation_ids == [] and again.duplicates == len(first.conversation_ids) > 0
    assert again.messages == 0
    assert snapshot(store) == before
    # Restoring a full export into the database it came from adds nothing either.
    seed(store)
    exported = export_json(store).encode()
    restored = import_bytes(store, exported, "export.json")
    assert restored.conversation_ids == [] and restored.duplicates == len(store.list_conversations())
