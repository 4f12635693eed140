"""Grounding check: supported replies pass, wrong names/numbers/dates and claims about the user are flagged."""

from __future__ import annotations

import math

import pytest

from assistant.checks import Grounding
from assistant.checks.claims import split_sentences
from assistant.checks.grounding import THRESHOLD, ground
from storage.embedder import Embedder

SOURCES = [
    "My name is Maria Santos. I live in Lisbon; I moved there from Porto in 2019.",
    "My sister Ana was born on 14 March 1990. I have two cats called Miso and Tofu.",
    "The Karsten Bridge crosses the Velmar River. It opened in 1932 and is 410 metres long.",
]


def _flag_covering(result: Grounding, text: str, needle: str) -> str:
    start = text.index(needle)
    hits = [f for f in result.flagged if f.start <= start < f.end]
    assert hits, f"no flag covers {needle!r}: {result.flagged}"
    assert text[hits[0].start : hits[0].end] == hits[0].text
    return hits[0].reason


def test_grounded_reply_scores_above_threshold(embedder: Embedder) -> None:
    text = "Sure! Your sister Ana was born on March 14, 1990. You have two cats, Miso and Tofu."
    result = ground(text, SOURCES, embedder=embedder)
    assert result.score is not None and result.score >= THRESHOLD
    assert result.flagged == []


def test_paraphrase_of_general_passage_is_grounded(embedder: Embedder) -> None:
    text = "The Karsten Bridge, which spans the Velmar River, was opened in 1932 and is 410 metres long."
    result = ground(text, SOURCES, embedder=embedder)
    assert result.score is not None and result.score >= THRESHOLD


@pytest.mark.parametrize(
    ("text", "wrong", "word"),
    [
        ("Your sister Ana was born on 14 March 1990. You live in Madrid.", "Madrid", "name"),
        ("The Karsten Bridge opened in 1932 and is 520 metres long.", "520", "number"),
        ("Your sister Ana was born on 17 March 1990.", "17 March 1990", "date"),
    ],
)
def test_wrong_name_number_date_is_flagged(embedder: Embedder, text: str, wrong: str, word: str) -> None:
    result = ground(text, SOURCES, embedder=embedder)
    assert result.score is not None and result.score < THRESHOLD
    reason = _flag_covering(result, text, wrong)
    assert word in reason and wrong in reason


def test_supported_sentence_beside_a_wrong_one_is_not_flagged(embedder: Embedder) -> None:
    text = "Your sister Ana was born on 14 March 1990. You live in Madrid."
    result = ground(text, SOURCES, embedder=embedder)
    assert [f.text for f in result.flagged] == ["You live in Madrid."]


def test_name_from_another_fact_is_flagged(embedder: Embedder) -> None:
    # "Tofu" is in the sources, but as a cat: the sister is Ana.
    text = "Your sister is called Tofu."
    result = ground(text, SOURCES, embedder=embedder)
    assert result.score is not None and result.score < THRESHOLD


def test_claim_about_the_user_not_in_sources_is_flagged(embedder: Embedder) -> None:
    text = "You live in Lisbon. You also volunteer at an animal shelter every weekend."
    result = ground(text, SOURCES, embedder=embedder)
    assert result.score is not None and result.score < THRESHOLD
    reason = _flag_covering(result, text, "You also volunteer")
    assert "you" in reason.lower()
    assert not any(f.start <= text.index("Lisbon") < f.end for f in result.flagged)


def test_contradiction_is_flagged(embedder: Embedder) -> None:
    text = "You don't have any cats."
    result = ground(text, SOURCES, embedder=embedder)
    assert result.score is not None and result.score < THRESHOLD
    assert "opposite" in _flag_covering(result, text, "You don't")


def test_invented_detail_on_a_true_clause_is_flagged(embedder: Embedder) -> None:
    text = "The Karsten Bridge opened in 1932, and it has a rooftop restaurant run by a famous chef."
    result = ground(text, SOURCES, embedder=embedder)
    assert result.score is not None and result.score < THRESHOLD
    _flag_covering(result, text, "it has a rooftop")
    assert not any(f.start == 0 for f in result.flagged)


@pytest.mark.parametrize("sources", [[], [""], ["   ", "\n\t"]])
def test_no_sources_is_none_not_one(sources: list[str]) -> None:
    # No embedder needed (and none loaded): there is nothing to compare against.
    result = ground("Paris is the capital of France.", sources)
    assert result.score is None
    assert result.flagged == []
    assert result.to_dict() == {"score": None, "flagged": []}


def test_empty_text_and_pleasantries_claim_nothing(embedder: Embedder) -> None:
    assert ground("", SOURCES, embedder=embedder).score == 1.0
    assert ground("   ", SOURCES, embedder=embedder).flagged == []
    result = ground("Good question! Is there anything else you would like to know?", SOURCES, embedder=embedder)
    assert result.score == 1.0 and result.flagged == []


def test_logprob_runs_are_flagged() -> None:
    text = "The bridge opened in 1932 and it was painted purple."
    offsets = [0, 3, 10, 17, 20, 25, 29, 32, 36, 44, 51]
    logprobs = [-0.1, -0.2, -0.1, -0.3, -0.1, -0.2, -0.1, -0.3, -3.4, -4.1, -0.2]
    result = ground(text, [], list(zip(offsets, logprobs, strict=True)))
    assert result.score is None  # no sources, but the model's own doubt is still reported
    assert [f.text for f in result.flagged] == ["painted purple"]
    assert "unsure" in result.flagged[0].reason


def test_logprob_single_very_unlikely_token_and_likely_text(embedder: Embedder) -> None:
    text = "You live in Lisbon."
    sure = ground(text, SOURCES, [(0, -0.1), (4, -0.2), (9, -0.1), (12, -0.3), (18, -0.1)], embedder=embedder)
    assert sure.flagged == []
    unsure = ground(text, SOURCES, [(0, -0.1), (4, -0.2), (9, -0.1), (12, -6.0), (18, -0.1)], embedder=embedder)
    assert [f.text for f in unsure.flagged] == ["Lisbon"]
    assert unsure.score is not None and unsure.score >= THRESHOLD  # log-probabilities flag, they do not score
    # One mildly unlikely token, or an unlikely full stop, is no doubt worth showing.
    mild = ground(text, SOURCES, [(0, -0.1), (4, -3.0), (9, -0.1), (12, -0.3), (18, -4.5)], embedder=embedder)
    assert mild.flagged == []
    odd = ground(text, SOURCES, [(-5, -9.0), (999, math.nan), (12, -7.0)], embedder=embedder)
    assert all(0 <= f.start < f.end <= len(text) for f in odd.flagged)


def test_sentence_offsets() -> None:
    text = "Dr. Lee met Ana. She was 30!\n\nThen they left.  Why?"
    spans = split_sentences(text)
    assert [s.text for s in spans] == ["Dr. Lee met Ana.", "She was 30!", "Then they left.", "Why?"]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_huge_reply_does_not_crash(embedder: Embedder) -> None:
    unit = "Your sister Ana was born on 14 March 1990. You live in Madrid with a dog named Rex. "
    text = (unit * (200_000 // len(unit) + 1))[:200_000]
    result = ground(text, SOURCES, embedder=embedder)
    assert result.score is not None and result.score < THRESHOLD
    assert result.flagged and all(text[f.start : f.end] == f.text for f in result.flagged)
    assert any("Madrid" in f.text for f in result.flagged)


def test_default_embedder_is_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    import assistant.checks.grounding as grounding

    monkeypatch.setattr(grounding, "_default", None)  # whatever an earlier test in this process loaded
    assert ground("x", []).score is None
    # Nothing was embedded for a call without sources: the default embedder need not even exist.
    assert grounding._default is None or not grounding._default.loaded


def test_admissions_claim_nothing_but_names_still_count(embedder: Embedder) -> None:
    text = "I’m sorry, I don’t have that information. I don't know. I'm glad to help!"
    assert ground(text, SOURCES, embedder=embedder).flagged == []
    named = "I'm sorry, but your sister is called Beatriz."
    result = ground(named, SOURCES, embedder=embedder)
    assert "Beatriz" in _flag_covering(result, named, "Beatriz")


def test_evaluation_set_is_deterministic_and_balanced() -> None:
    from bench.check_grounding_data import build

    a, b = build(1), build(1)
    assert [(i.answer, i.context, i.label) for i in a] == [(i.answer, i.context, i.label) for i in b]
    assert [i.answer for i in build(2)] != [i.answer for i in a]
    assert len(a) >= 300 and sum(i.label for i in a) * 2 == len(a)
    kinds = {i.kind for i in a if i.label == 0}
    assert {"wrong_name", "wrong_number", "wrong_date", "invented_user", "contradiction", "absent"} <= kinds


def test_auroc_and_baseline() -> None:
    from bench.check_grounding import auroc, lexical_overlap

    assert auroc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert auroc([0.5, 0.5], [1, 0]) == 0.5
    assert lexical_overlap("You live in Lisbon.", SOURCES) == 1.0
    assert lexical_overlap("You live in Madrid.", SOURCES) < 1.0


def test_general_knowledge_with_off_topic_sources_is_none(embedder: Embedder) -> None:
    text = "The capital of France is Paris. Python lists are mutable, while tuples are not."
    assert ground(text, SOURCES, embedder=embedder).score is None
    # A claim about the user is always checked, however far from the sources.
    mine = ground("You collect antique typewriters.", SOURCES, embedder=embedder)
    assert mine.score is not None and mine.score < THRESHOLD and mine.flagged


def test_ground_many_matches_ground_in_order(embedder: Embedder) -> None:
    from assistant.checks.grounding import ground_many

    items = [
        ("Your sister Ana was born on 14 March 1990.", SOURCES),
        ("You live in Madrid.", SOURCES),
        ("Paris is the capital of France.", []),
        ("", SOURCES),
        ("The Karsten Bridge is 520 metres long.", SOURCES[2:]),
    ]
    batch = ground_many(items, embedder=embedder)
    assert batch == [ground(text, sources, embedder=embedder) for text, sources in items]
    assert [g.score is None for g in batch] == [False, False, True, False, False]
    assert batch[0].score is not None and batch[0].score >= THRESHOLD
    assert batch[1].flagged and batch[4].flagged


def test_markdown_lists_and_headings(embedder: Embedder) -> None:
    text = "### Your cats\n\n1. Miso\n2. Tofu\n- Your sister Ana was born in 1990.\n* You live in Madrid."
    spans = split_sentences(text)
    assert [s.text for s in spans] == [
        "### Your cats",
        "Miso",
        "Tofu",
        "Your sister Ana was born in 1990.",
        "You live in Madrid.",
    ]
    assert all(text[s.start : s.end] == s.text for s in spans)
    result = ground(text, SOURCES, embedder=embedder)
    assert [f.text for f in result.flagged] == ["You live in Madrid."]  # list numbers are not claims
