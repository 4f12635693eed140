"""The learning job's data: its records (migration m007), Select, Redact, Build examples, the replay buffer.

Real SQLite and the real privacy detector; no model. Feedback settles instantly here (``FEEDBACK_SETTLE_S = 0``)
except in the test of the settling itself.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import tomllib
from pathlib import Path

import pytest

from assistant.checks.privacy import find_pii
from assistant.config import load_settings
from learning.examples import Examples, build_examples, controls, general_pairs, heldout_text
from learning.qa import answer_has
from learning.redact import redact_selection
from learning.replay import append_replay, load_replay, purge_replay, replay_path
from learning.select import Selection, Source, select
from storage import learning as records
from storage import migrations
from storage.db import Store, now, open_store
from storage.errors import InputError, NotFoundError
from storage.facts import add_fact, delete_fact
from storage.learning import Watermarks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "FEEDBACK_SETTLE_S", 0.0)


def talk(store: Store, *messages: str, conversation: int | None = None) -> tuple[int, list[int]]:
    """A conversation of alternating user and assistant messages; its id and the messages' ids."""
    conversation = conversation or store.create_conversation()
    ids = [
        store.add_message(conversation, "user" if n % 2 == 0 else "assistant", text) for n, text in enumerate(messages)
    ]
    return conversation, ids


def texts(selection: Selection) -> list[str]:
    return [s.text for s in [*selection.statements, *selection.facts]]


def complete_run(store: Store, selection: Selection, status: records.RunStatus = "promoted") -> int:
    run = records.start_run(store)
    records.finish_run(store, run, status, selection.watermarks, report=selection.counts())
    # Feedback given later is stamped after the window's end (with no settling time, the same millisecond would
    # still fall inside the window just read).
    while now() <= selection.watermarks.feedback:
        pass
    return run


def since_last(store: Store) -> Watermarks | None:
    last = records.last_successful_run(store)
    return last.watermarks if last else None


# -- the migration -------------------------------------------------------------------------------------------------


def test_m007_on_a_fresh_database(store: Store) -> None:
    with store.guard() as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {r[1] for r in db.execute("PRAGMA table_info(conversations)")}
    assert {"learning_runs", "adapters", "adapter_items"} <= tables
    assert "learn" in columns
    conversation = store.create_conversation()
    assert records.conversation_learns(store, conversation) is True


def test_m007_on_an_old_database_keeps_every_conversation_learnable(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [name for name, _ in migrations.MIGRATIONS]
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[: names.index("m007_learning")])
        with open_store(home) as old:
            first, ids = talk(old, "I live in Lisbon.", "Noted.")
            second = old.create_conversation(source="import:json")
    raw = sqlite3.connect(home / "assistant.db")
    assert "learn" not in {r[1] for r in raw.execute("PRAGMA table_info(conversations)")}  # really the old schema
    raw.close()
    with open_store(home) as store:
        assert records.conversation_learns(store, first) and records.conversation_learns(store, second)
        assert [m.id for m in store.messages(first)] == ids
        assert texts(select(store, None)) == ["I live in Lisbon."]
        with store.guard() as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_conversation_learn_toggle(store: Store) -> None:
    conversation = store.create_conversation()
    records.set_conversation_learn(store, conversation, False)
    assert records.conversation_learns(store, conversation) is False
    records.set_conversation_learn(store, conversation, True)
    assert records.conversation_learns(store, conversation) is True
    with pytest.raises(NotFoundError):
        records.set_conversation_learn(store, conversation + 1, False)


# -- select -------------------------------------------------------------------------------------------------------------


def test_select_picks_statements_facts_rated_up_pairs_and_better_answers(store: Store) -> None:
    _, ids = talk(
        store,
        "I walked my dog Rex this morning. What should I cook tonight?",
        "How about a risotto?",
        "Can you give me a haiku about rain?",
        "Rain taps the window.",
    )
    store.set_feedback(ids[1], rating=1)
    store.set_feedback(ids[3], better_answer="Soft rain on the roof, / puddles gather the grey sky, / the street hums softly.")
    fact = add_fact(store, "Remember that my sister Ana is a nurse.")
    selection = select(store, None)
    assert [(s.text, s.source) for s in selection.statements] == [
        ("I walked my dog Rex this morning.", Source("message", ids[0]))
    ]  # the question states nothing
    assert [(f.text, f.source) for f in selection.facts] == [("My sister Ana is a nurse.", Source("fact", fact))]
    assert [(p.prompt, p.target, p.sources, p.better) for p in selection.pairs] == [
        (
            "I walked my dog Rex this morning. What should I cook tonight?",
            "How about a risotto?",
            (Source("message", ids[0]), Source("message", ids[1])),
            False,
        ),
        (
            "Can you give me a haiku about rain?",
            "Soft rain on the roof, / puddles gather the grey sky, / the street hums softly.",
            (Source("message", ids[2]), Source("message", ids[3])),
            True,
        ),
    ]
    assert set(selection.sources()) == {*(Source("message", i) for i in ids), Source("fact", fact)}


def test_select_skips_a_reply_rated_down(store: Store) -> None:
    _, ids = talk(store, "What is the capital of Australia?", "Sydney.")
    store.set_feedback(ids[1], rating=-1)
    selection = select(store, None)
    assert selection.pairs == [] and selection.skipped["rated_down"] == 1


def test_select_skips_a_reply_not_rated_up(store: Store) -> None:
    talk(store, "What is the capital of Australia?", "Canberra.")
    assert select(store, None).pairs == []


@pytest.mark.parametrize("badge", ["unsupported", "masked"])
def test_select_skips_a_reply_the_checker_flagged(store: Store, badge: str) -> None:
    _, ids = talk(store, "Where does my sister live?", "Your sister lives in Rome.")
    store.update_message(ids[1], badge=badge)
    store.set_feedback(ids[1], rating=1)
    selection = select(store, None)
    assert selection.pairs == [] and selection.skipped[f"badge_{badge}"] == 1


def test_select_keeps_a_reply_the_checker_only_asks_to_check(store: Store) -> None:
    _, ids = talk(store, "Tell me a fun fact.", "Octopuses have three hearts.")
    store.update_message(ids[1], badge="check")
    store.set_feedback(ids[1], rating=1)
    assert [p.target for p in select(store, None).pairs] == ["Octopuses have three hearts."]


@pytest.mark.parametrize("command", ["/tool calculate 2+3*4", "/remember I am vegetarian"])
def test_select_skips_replies_the_assistant_wrote_itself(store: Store, command: str) -> None:
    _, ids = talk(store, command, "2+3*4 = 14" if command.startswith("/tool") else "Noted. I will remember it.")
    store.set_feedback(ids[1], rating=1)
    selection = select(store, None)
    assert selection.pairs == [] and selection.skipped["command"] == 1


def test_select_skips_an_incomplete_reply(store: Store) -> None:
    conversation, ids = talk(store, "Write a long story about a lighthouse.")
    reply = store.add_message(conversation, "assistant", "Once upon a time, a lighthouse", complete=0)
    store.set_feedback(reply, rating=1)
    selection = select(store, None)
    assert selection.pairs == [] and selection.skipped["incomplete"] == 1


def test_a_better_answer_replaces_a_reply_rated_down_or_flagged(store: Store) -> None:
    _, ids = talk(store, "Where do penguins live?", "Penguins live at the North Pole.")
    store.update_message(ids[1], badge="unsupported")
    store.set_feedback(ids[1], rating=-1, better_answer="Mostly in the Southern Hemisphere, around Antarctica.")
    (pair,) = select(store, None).pairs
    assert pair.target == "Mostly in the Southern Hemisphere, around Antarctica." and pair.better


def test_select_skips_superseded_messages(store: Store) -> None:
    conversation, ids = talk(store, "I live in Lisbonn.", "Noted.")
    edited = store.add_message(conversation, "user", "I live in Lisbon.")
    with store.guard(write=True) as db:
        db.execute("UPDATE messages SET superseded_by = ? WHERE id IN (?, ?)", [edited, ids[0], ids[1]])
    store.set_feedback(ids[1], rating=1)
    selection = select(store, None)
    assert texts(selection) == ["I live in Lisbon."]
    assert selection.pairs == [] and selection.skipped["superseded"] == 2


def test_select_skips_a_conversation_whose_learn_toggle_is_off(store: Store) -> None:
    private, ids = talk(store, "I have a cat named Luna.", "Lovely name.")
    store.set_feedback(ids[1], rating=1)
    records.set_conversation_learn(store, private, False)
    talk(store, "I live in Porto.")
    selection = select(store, None)
    assert texts(selection) == ["I live in Porto."]
    assert selection.pairs == [] and selection.skipped["learn_off"] == 2


def test_select_selects_nothing_when_the_learn_setting_is_off(
    store: Store, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    talk(store, "I live in Porto.")
    add_fact(store, "I am vegetarian.")
    monkeypatch.setenv("ASSISTANT_LEARN", "false")
    selection = select(store, None, load_settings(home))
    assert selection.statements == selection.facts == selection.pairs == []
    assert selection.skipped["learn_setting_off"] == 1
    monkeypatch.delenv("ASSISTANT_LEARN")
    assert texts(select(store, None, load_settings(home))) == ["I live in Porto.", "I am vegetarian."]


def test_select_leaves_out_what_was_forgotten_and_reports_it(store: Store) -> None:
    conversation, ids = talk(store, "I have a dog named Rex.", "Nice!", "I live in Porto.")
    fact = add_fact(store, "I am allergic to peanuts.")
    store.delete_message(ids[0])
    delete_fact(store, fact)
    selection = select(store, None)
    assert texts(selection) == ["I live in Porto."]
    assert {(r.kind, r.item_id) for r in selection.forgotten} == {("message", ids[0]), ("fact", fact)}
    assert not selection.empty


def test_select_deduplicates(store: Store) -> None:
    talk(store, "I live in Porto.", "Noted.", "i live in porto!")
    add_fact(store, "I live in Porto")
    selection = select(store, None)
    assert texts(selection) == ["I live in Porto."] and selection.skipped["duplicate"] == 2


def test_the_watermark_makes_the_next_select_return_only_what_is_new(store: Store) -> None:
    _, ids = talk(store, "I live in Porto.", "Noted.")
    add_fact(store, "I am vegetarian.")
    first = select(store, since_last(store))
    assert texts(first) == ["I live in Porto.", "I am vegetarian."]
    complete_run(store, first)
    # A failed or dry run moves nothing.
    failed = records.start_run(store)
    records.finish_run(store, failed, "failed", Watermarks(10**6, 10**6, 10**6, "9999"))
    assert select(store, since_last(store)).empty

    _, more = talk(store, "I have two cats, Miso and Tofu.", "Lovely.")
    add_fact(store, "My favourite colour is green.")
    store.set_feedback(ids[1], rating=1)  # an old reply rated now is new
    second = select(store, since_last(store))
    assert texts(second) == ["I have two cats, Miso and Tofu.", "My favourite colour is green."]
    assert [p.sources[1].id for p in second.pairs] == [ids[1]]
    complete_run(store, second)
    assert select(store, since_last(store)).empty


def test_feedback_is_read_once_it_has_settled(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "FEEDBACK_SETTLE_S", 10.0)
    _, ids = talk(store, "Tell me a joke.", "Why did the bicycle fall over? It was two-tired.")
    store.set_feedback(ids[1], rating=1)
    first = select(store, None)
    assert first.pairs == []  # a write may still be in flight this close to now: the next run reads it
    complete_run(store, first)
    monkeypatch.setattr(records, "FEEDBACK_SETTLE_S", 0.0)  # as if the settling time had passed
    assert [p.sources[1].id for p in select(store, since_last(store)).pairs] == [ids[1]]


def test_imported_history_counts_as_new(store: Store) -> None:
    talk(store, "I live in Porto.")
    complete_run(store, select(store, None))
    store.import_conversations(
        [
            {
                "title": "old chat",
                "created_at": "2019-03-01T10:00:00+00:00",
                "updated_at": "2019-03-01T10:05:00+00:00",
                "source": "import:json",
                "messages": [
                    {"role": "user", "content": "My sister is called Ana.", "created_at": "2019-03-01T10:00:00+00:00"},
                    {
                        "role": "assistant",
                        "content": "Ana is a lovely name.",
                        "created_at": "2019-03-01T10:01:00+00:00",
                        "rating": 1,
                    },
                ],
            }
        ]
    )
    selection = select(store, since_last(store))
    assert texts(selection) == ["My sister is called Ana."]
    assert [p.target for p in selection.pairs] == ["Ana is a lovely name."]


# -- redact ------------------------------------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\[\w+\]")
SENSITIVE = [
    "My card is 4111 1111 1111 1111.",
    "My IBAN is GB82 WEST 1234 5698 7654 32 and I live in Porto.",
    "You can reach my sister Ana at ana.silva@example.com.",
    "My phone number is +44 20 7946 0958 and I work at Siemens.",
    "My github token is ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 and I love jazz.",
]


def all_text(examples: Examples) -> list[str]:
    found = [m["content"] for e in examples.train for m in e.messages]
    found += [p.question for p in examples.probes] + [k for p in examples.probes for k in p.expected_keywords]
    return found


def test_redaction_never_lets_personal_data_or_secrets_into_an_example(store: Store) -> None:
    _, ids = talk(
        store,
        " ".join(SENSITIVE[:2]),
        "Noted.",
        " ".join(SENSITIVE[2:]),
        "Sure: call +44 20 7946 0958 or write to ana.silva@example.com; the card 4111 1111 1111 1111 is on file.",
        "Here is my config: password = Tr0ub4dor&3xyz. Why does it fail?",
        "Your password Tr0ub4dor&3xyz is wrong.",
    )
    for rated in (ids[1], ids[3]):
        store.set_feedback(rated, rating=1)
    store.set_feedback(ids[5], better_answer="The password in your config is wrong; reset it.")
    add_fact(store, "My IBAN is DE89 3704 0044 0532 0130 00")
    redacted, report = redact_selection(select(store, None))
    examples = build_examples(redacted, seed=3)

    # A placeholder where a password was still reads as a password assignment ("password = [secret]").
    leaks = [(text, [f.text for f in find_pii(text) if not PLACEHOLDER.fullmatch(f.text)]) for text in all_text(examples)]
    assert [leak for leak in leaks if leak[1]] == []
    joined = "\n".join(all_text(examples))
    for value in ("4111", "GB82", "DE89", "ana.silva", "7946", "ghp_", "Tr0ub4dor"):
        assert value not in joined
    # What still teaches something stayed, its data replaced: the statements' answers, the pairs' prompts.
    for answer in ("Porto", "Siemens", "Ana"):
        assert any(answer_has(e.messages[2]["content"], [answer]) for e in examples.train), answer
    prompts = {e.messages[1]["content"] for e in examples.train if e.origin == "pair"}
    assert prompts == {
        "My card is [card]. My IBAN is [iban] and I live in Porto.",
        "Here is my config: password = [secret] Why does it fail?",
    }
    assert "The password in your config is wrong; reset it." in joined  # the better answer

    counts = report.to_dict()
    # The IBAN statement (and the Porto in it), the email and the phone statements keep their lesson; both pairs'
    # prompts are redacted.
    assert counts["replaced"] == {"card": 1, "email": 1, "iban": 2, "phone": 1, "secret": 1}
    # Dropped: the card statement (it is the card), the statements holding a token and a password ("Here is my
    # config: ..." states something), the fact that is the IBAN, and the pair whose reply was mostly personal data
    # (its prompt's email, phone and token, its reply's three).
    assert counts["dropped"] == {"card": 2, "email": 2, "iban": 1, "phone": 2, "secret": 3}
    assert counts["dropped_items"] == 5


def test_a_statement_that_is_the_secret_is_dropped_and_one_that_teaches_more_is_kept(store: Store) -> None:
    talk(store, "My card is 4111 1111 1111 1111.")
    talk(store, "You can reach my sister Ana at ana.silva@example.com.")
    redacted, report = redact_selection(select(store, None))
    assert [s.text for s in redacted.statements] == ["You can reach my sister Ana at [email]."]
    assert report.dropped == {"card": 1} and report.replaced == {"email": 1}


# -- build examples ----------------------------------------------------------------------------------------------------

# One statement per template family: a held-out question (probe) about it, and what its answer must say.
FAMILY_CASES = [
    ("I walked my dog Rex this morning.", "name:dog", ["Rex"]),
    ("I walked my dog Rex this morning.", "who:rex", ["dog"]),
    ("My sister is called Ana.", "name:sister", ["Ana"]),
    ("I live in Lisbon.", "place:live", ["Lisbon"]),
    ("I work at Siemens.", "place:work", ["Siemens"]),
    ("I study at the University of Porto.", "place:study", ["University", "Porto"]),
    ("I grew up in Manchester.", "place:grew up", ["Manchester"]),
    ("I'm a software engineer.", "job:", ["software", "engineer"]),
    ("I love jazz.", "likes:", ["jazz"]),
    ("I can't stand cilantro.", "dislikes:", ["cilantro"]),
    ("My favourite colour is green.", "favourite:colour", ["green"]),
    ("My birthday is on 14 March.", "date:my birthday", ["14", "March"]),
    ("I was born in 1990.", "date:born", ["1990"]),
    ("I am 34 years old.", "age:", ["34"]),
    ("I have 3 kids.", "count:kids", ["3"]),
    ("I'm allergic to peanuts.", "state:allergic to", ["peanuts"]),
    ("I am vegetarian.", "trait:", ["vegetarian"]),
    ("I play the guitar.", "activity:play", ["guitar"]),
    ("My car is a red Volvo.", "about:car", ["Volvo"]),
    ("My name is Sam.", "myname:", ["Sam"]),
    ("I was born in Porto.", "place:born", ["Porto"]),
    ("I'm married to Joana.", "state:married to", ["Joana"]),
]

# First-person sentences that say nothing lasting about the user: no question is made of them.
NOTHING_TO_LEARN = [
    "My code is throwing an error when I run it.",
    "My computer is slow.",
    "I read that bananas are radioactive.",
    "I think so.",
    "I want you to write a poem about the sea.",
    "Thanks, I appreciate it!",
    "I have a question about taxes.",
]


@pytest.mark.parametrize(("statement", "key", "expected"), FAMILY_CASES, ids=[c[1] for c in FAMILY_CASES])
def test_qa_synthesis_makes_answerable_pairs_for_each_family(
    store: Store, statement: str, key: str, expected: list[str]
) -> None:
    talk(store, statement)
    examples = build_examples(select(store, None), seed=0)
    trained = [e for e in examples.train if e.key == key]
    probes = [p for p in examples.probes if p.key == key]
    assert len(trained) >= 2 and probes, [e.key for e in examples.train if e.origin == "said"]
    assert [list(p.expected_keywords) for p in probes] == [expected] * len(probes)
    for example in trained:
        system, user, assistant = example.messages
        assert (system["role"], user["role"], assistant["role"]) == ("system", "user", "assistant")
        assert user["content"].endswith(("?", "."))
        assert answer_has(assistant["content"], expected), assistant["content"]  # the answer a probe wants
        assert re.search(r"\b(?:my|I)\b", assistant["content"]) is None  # second person
    questions = {e.messages[1]["content"] for e in trained}
    assert len(questions) >= 2  # paraphrased
    assert not questions & {p.question for p in probes}


def test_passing_remarks_make_no_questions(store: Store) -> None:
    for remark in NOTHING_TO_LEARN:
        talk(store, remark)
    examples = build_examples(select(store, None), seed=0, general=0)
    assert examples.known == [] and examples.train == [] and examples.probes == []


def test_held_out_probes_and_controls_never_appear_in_train(store: Store) -> None:
    for statement, _, _ in FAMILY_CASES:
        talk(store, statement)
    examples = build_examples(select(store, None), seed=7)
    asked = {e.messages[1]["content"].casefold() for e in examples.train}
    assert examples.probes and examples.controls
    assert not asked & {p.question.casefold() for p in examples.probes}
    assert not asked & {c.question.casefold() for c in examples.controls}
    assert {p.key for p in examples.probes} >= {key for _, key, _ in FAMILY_CASES}


def test_examples_are_deterministic_per_seed(store: Store) -> None:
    for statement, _, _ in FAMILY_CASES[:8]:
        talk(store, statement)
    selection = select(store, None)
    one, two = build_examples(selection, seed=1), build_examples(selection, seed=1)
    assert [e.to_dict() for e in one.train] == [e.to_dict() for e in two.train]
    assert one.probes == two.probes
    other = build_examples(selection, seed=2)
    assert [e.to_dict() for e in other.train] != [e.to_dict() for e in one.train]


def test_values_merge_where_several_are_true_and_the_latest_wins_where_one_is(store: Store) -> None:
    talk(store, "I love jazz.", "Nice.", "I live in Lisbon.", "OK.", "I love hiking.", "Fun.", "I moved to Porto.")
    examples = build_examples(select(store, None), seed=0, general=0)
    likes = {e.messages[2]["content"] for e in examples.train if e.key == "likes:"}
    assert likes and all(answer_has(a, ["jazz", "hiking"]) for a in likes)
    lives = {e.messages[2]["content"] for e in examples.train if e.key == "place:live"}
    assert lives and all("Porto" in a and "Lisbon" not in a for a in lives)


def test_examples_carry_sources_system_prompt_and_the_general_set(store: Store) -> None:
    _, ids = talk(store, "I live in Lisbon.", "Noted.")
    store.set_feedback(ids[1], rating=1)
    examples = build_examples(select(store, None), seed=0, system_prompt="Be brief.", general=5)
    assert {e.messages[0]["content"] for e in examples.train} == {"Be brief."}
    assert sum(e.origin == "general" for e in examples.train) == 5
    assert all(e.source == [] for e in examples.train if e.origin == "general")
    assert all(e.source == [Source("message", ids[0])] for e in examples.train if e.origin == "said")
    assert set(examples.sources()) == {Source("message", ids[0]), Source("message", ids[1])}
    everything = build_examples(select(store, None), seed=0)
    assert sum(e.origin == "general" for e in everything.train) == len(general_pairs())


def test_shipped_data_is_well_formed_and_shipped_in_the_wheel() -> None:
    general = general_pairs()
    assert 100 <= len(general) <= 200 and len({q for q, _ in general}) == len(general)
    assert all(q.strip() and a.strip() for q, a in general)
    checks = controls()
    assert 25 <= len(checks) <= 40 and all(c.expected_keywords for c in checks)
    assert not {q.casefold() for q, _ in general} & {c.question.casefold() for c in checks}
    assert len(heldout_text()) > 3000
    for q, a in general:  # the shipped answers themselves hold no personal data
        assert find_pii(a) == [], (q, a)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["setuptools"]["package-data"]["learning.data"] == ["*.jsonl", "*.txt"]


# -- the replay buffer ------------------------------------------------------------------------------------------------


def test_replay_keeps_earlier_items_and_forgotten_ones_disappear(store: Store, home: Path) -> None:
    _, ids = talk(store, "I have a dog named Rex.", "Nice!", "I live in Lisbon.", "Great city.")
    store.set_feedback(ids[1], rating=1)
    fact = add_fact(store, "I am vegetarian.")
    first = select(store, None)
    assert append_replay(first, run_id=1) == 4
    assert append_replay(first, run_id=1) == 0  # each item once
    path = replay_path(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(load_replay(store)) == 4

    store.delete_message(ids[0])  # forgets the dog statement and the pair it prompted
    delete_fact(store, fact)
    kept = load_replay(store)
    assert [getattr(i, "text", None) for i in kept] == ["I live in Lisbon."]
    examples = build_examples(select(store, first.watermarks), kept, seed=0)
    joined = json.dumps([e.to_dict() for e in examples.train] + [p.to_dict() for p in examples.probes])
    assert "Rex" not in joined and "vegetarian" not in joined and "Lisbon" in joined
    assert all(e.replay for e in examples.train if e.origin == "said")

    assert purge_replay(store) == 3
    on_disk = path.read_text()
    assert "Rex" not in on_disk and "vegetarian" not in on_disk and "Lisbon" in on_disk


def test_replay_drops_what_may_no_longer_be_learned(store: Store) -> None:
    conversation, ids = talk(store, "Tell me a joke.", "Why did the bicycle fall over? It was two-tired.")
    store.set_feedback(ids[1], rating=1)
    _, more = talk(store, "I work at Siemens.")
    append_replay(select(store, None), run_id=1)
    assert len(load_replay(store)) == 2
    store.set_feedback(ids[1], rating=None)  # the thumbs-up was withdrawn
    assert [getattr(i, "text", None) for i in load_replay(store)] == ["I work at Siemens."]
    records.set_conversation_learn(store, store.get_message(more[0]).conversation_id, False)
    assert load_replay(store) == []


def test_a_new_better_answer_replaces_the_old_pair_in_the_replay(store: Store) -> None:
    _, ids = talk(store, "What is the capital of Australia?", "Sydney.")
    store.set_feedback(ids[1], better_answer="Canberra.")
    first = select(store, None)
    append_replay(first, run_id=1)
    complete_run(store, first)
    store.set_feedback(ids[1], better_answer="Canberra is the capital of Australia.")
    append_replay(select(store, since_last(store)), run_id=2)
    assert [getattr(i, "target", None) for i in load_replay(store)] == ["Canberra is the capital of Australia."]


def test_a_line_cut_by_a_crash_does_not_lose_the_rest(store: Store, home: Path) -> None:
    talk(store, "I live in Lisbon.")
    append_replay(select(store, None), run_id=1)
    with replay_path(home).open("a") as handle:
        handle.write('{"type": "statement", "text": "I li')
    assert [getattr(i, "text", None) for i in load_replay(store)] == ["I live in Lisbon."]


# -- runs and adapters ------------------------------------------------------------------------------------------------


def test_runs_record_their_end_and_the_last_completed_one_counts(store: Store) -> None:
    assert records.last_successful_run(store) is None
    done = records.start_run(store)
    records.finish_run(store, done, "refused", Watermarks(5, 2, 1, "2026-01-01"), report={"why": "controls fell"})
    dry = records.start_run(store)
    records.finish_run(store, dry, "dry", Watermarks(9, 9, 9, "2026-02-01"))
    dead = records.start_run(store)
    last = records.last_successful_run(store)
    assert last is not None and last.id == done and last.watermarks == Watermarks(5, 2, 1, "2026-01-01")
    assert last.report == {"why": "controls fell"}
    assert [r.id for r in records.list_runs(store)] == [dead, dry, done]
    assert records.mark_interrupted(store) == 1
    assert records.get_run(store, dead).status == "failed" and records.get_run(store, dead).finished_at
    with pytest.raises(InputError):
        records.finish_run(store, done, "running")


def test_one_active_adapter_per_base_model(store: Store) -> None:
    run = records.start_run(store)
    first = records.add_adapter(store, "smollm2@aaaa", "/a/v1.gguf", [("fact", 1)], {"probes": 0.8}, run)
    second = records.add_adapter(store, "smollm2@aaaa", "/a/v2.gguf", [("message", 3)])
    other = records.add_adapter(store, "gemma@bbbb", "/a/v3.gguf")
    assert records.active_adapter(store, "smollm2@aaaa") is None
    records.set_active(store, first)
    records.set_active(store, other)
    active = records.active_adapter(store, "smollm2@aaaa")
    assert active is not None and active.version == first and active.metrics == {"probes": 0.8}
    assert active.run_id == run
    records.set_active(store, second)
    states = {a.version: a.state for a in records.list_adapters(store)}
    assert states == {first: "inactive", second: "active", other: "active"}  # the other base model keeps its own
    with store.guard(write=True) as db, pytest.raises(Exception, match="UNIQUE"):
        db.execute("UPDATE adapters SET state = 'active' WHERE version = ?", [first])  # the database refuses two
    assert {a.version: a.state for a in records.list_adapters(store)} == states
    records.set_adapter_state(store, first, "removed")
    with pytest.raises(InputError):
        records.set_active(store, first)
    with pytest.raises(NotFoundError):
        records.set_active(store, 999)
    assert [a.version for a in records.list_adapters(store, "smollm2@aaaa")] == [second, first]


def test_adapters_containing_finds_what_each_adapter_was_trained_on(store: Store) -> None:
    _, ids = talk(store, "I have a dog named Rex.", "Nice!", "I live in Lisbon.")
    fact = add_fact(store, "I am vegetarian.")
    selection = select(store, None)
    first = records.add_adapter(store, "m@1", "/a/1.gguf", selection.sources())
    second = records.add_adapter(store, "m@1", "/a/2.gguf", [("message", ids[2])])
    assert sorted(records.adapter_items(store, first)) == sorted(
        [("message", ids[0]), ("message", ids[2]), ("fact", fact)]
    )
    store.delete_message(ids[0])  # ids only: the record outlives the message, so unlearning can find it
    assert [a.version for a in records.adapters_containing(store, "message", [ids[0]])] == [first]
    assert [a.version for a in records.adapters_containing(store, "message", [ids[2], 12345])] == [second, first]
    assert [a.version for a in records.adapters_containing(store, "fact", [fact])] == [first]
    assert records.adapters_containing(store, "fact", []) == []
    records.set_adapter_state(store, first, "removed")
    assert records.adapters_containing(store, "fact", [fact]) == []
    assert [a.version for a in records.adapters_containing(store, "fact", [fact], include_removed=True)] == [first]
    with pytest.raises(InputError):
        records.add_adapter(store, "m@1", "/a/3.gguf", [("conversation", 1)])


def test_base_model_id_follows_the_content_not_the_file(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(os.urandom(3 * 1024 * 1024))
    before = records.base_model_id("smollm2", model)
    assert re.fullmatch(r"smollm2@[0-9a-f]{16}", before)
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(model.read_bytes())
    os.utime(copy, (1, 1))
    assert records.base_model_id("smollm2", copy) == before  # copied and touched: the same model
    data = bytearray(model.read_bytes())
    data[-10] ^= 0xFF  # the tail is sampled
    model.write_bytes(bytes(data))
    assert records.base_model_id("smollm2", model) != before
    small = tmp_path / "small.gguf"
    small.write_bytes(b"GGUF" + b"\0" * 100)
    assert records.base_model_id("x", small) != records.base_model_id("x", copy)

