"""The semantic-memory benchmark's labelled set: deterministic, and every answer in exactly one message."""

from __future__ import annotations

import re

from bench.recall_data import Dataset, generate, occurrences

WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)}


def test_same_seed_same_dataset() -> None:
    a, b = generate(seed=7, sessions=200), generate(seed=7, sessions=200)
    assert a.conversations == b.conversations
    assert a.questions == b.questions
    assert generate(seed=8, sessions=200).conversations != a.conversations


def test_size_of_the_default_set() -> None:
    d = generate()
    assert d.stats["messages"] >= 3000
    assert 100 <= d.stats["questions"] <= 200
    assert d.stats["changed_facts"] >= 5
    assert len({q.text for q in d.questions}) == len(d.questions)  # every question is unambiguous


def _answer(d: Dataset, where: tuple[int, int]) -> dict:
    conversation, message = where
    return d.conversations[conversation]["messages"][message]


def test_each_answer_lies_in_exactly_one_message() -> None:
    d = generate()
    for q in d.questions:
        assert occurrences(d, q.answer) == [(q.conversation, q.message)], q
        message = _answer(d, (q.conversation, q.message))
        assert message["role"] == "user"
        assert q.answer.lower() not in q.text.lower()
        # Paraphrased: the question never shares all of its words with the answer.
        assert not _words(q.text) <= _words(message["content"]), q


def test_changed_facts_newest_wins() -> None:
    d = generate()
    changed = [q for q in d.questions if q.changed]
    assert changed
    for q in changed:
        answer_time = _answer(d, (q.conversation, q.message))["created_at"]
        for stale in q.stale:
            assert _answer(d, stale)["created_at"] < answer_time
            assert q.answer not in _answer(d, stale)["content"]
