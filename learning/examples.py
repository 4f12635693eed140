"""Build examples: chat examples to train on, personal probes held out from them, and the general controls.

From a (redacted) selection and the replay buffer:

- what the user said about themselves (statements and facts) becomes question/answer pairs in the second person
  (``learning.said`` finds what a statement says, ``learning.qa`` holds the question and answer templates). Per
  group of questions (one family and slot: "the dog's name", "what I like") a share of the paraphrased questions
  (``holdout``, at least one when there are three or more) is held out as probes: never trained on, asked after
  training, scored by their expected keywords (:func:`learning.qa.answer_has`);
- pairs (a reply rated up, or the user's better answer) are trained as they are;
- a general instruction set shipped with the package (``learning/data/general.jsonl``) is mixed in against
  forgetting; the control prompts (``controls.jsonl``, never trained on) and held-out general text for perplexity
  (``heldout.txt``) are for the evaluation.

Every example is ``system`` (the assistant's system prompt), ``user``, ``assistant`` messages; tokenising, the chat
template and the loss on assistant tokens only are the train step's. Each carries its sources (what
``adapter_items`` records) and its origin ("said", "pair" or "general"), with ``replay`` set for what earlier runs
selected. Deterministic: the same selection, replay and seed give the same examples in the same order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from learning.qa import FAMILIES, answer_has, join_values, keywords
from learning.said import extract, second_person
from learning.select import Pair, Selection, Source, Statement, normalised

HOLDOUT = 0.34  # share of each group's questions held out as probes
PER_QUESTION = 2  # answer phrasings trained per question


@dataclass(slots=True)
class Example:
    messages: list[dict[str, str]]
    source: list[Source]
    origin: str  # "said" (question/answer synthesis), "pair" or "general"
    replay: bool = False  # from an earlier run's selection
    key: str = ""  # the question group ("name:dog") of a synthesised example

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "source": [list(s) for s in self.source],
            "origin": self.origin,
            "replay": self.replay,
            "key": self.key,
        }


@dataclass(slots=True, frozen=True)
class Probe:
    """A held-out question about the user and the words a right answer contains."""

    question: str
    expected_keywords: tuple[str, ...]
    fact_source: Source
    replay: bool = False  # about something an earlier run selected
    key: str = ""

    def passes(self, answer: str) -> bool:
        return answer_has(answer, list(self.expected_keywords))

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "expected_keywords": list(self.expected_keywords),
            "fact_source": list(self.fact_source),
            "replay": self.replay,
            "key": self.key,
        }


@dataclass(slots=True, frozen=True)
class Control:
    """A general question whose answer must keep its keywords after training (never trained on)."""

    question: str
    expected_keywords: tuple[str, ...]

    def passes(self, answer: str) -> bool:
        return answer_has(answer, list(self.expected_keywords))


@dataclass(slots=True, frozen=True)
class Known:
    """One thing known about the user, with the statement's source."""

    family: str
    slot: str
    value: str
    source: Source
    replay: bool = False


@dataclass(slots=True)
class Examples:
    train: list[Example] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)
    known: list[Known] = field(default_factory=list)  # what the synthesis understood (for the report)

    def sources(self) -> list[Source]:
        """Every source the training examples rest on, once (for ``storage.learning.add_adapter``)."""
        found: dict[Source, None] = {}
        for example in self.train:
            found.update(dict.fromkeys(example.source))
        return list(found)

    def counts(self) -> dict[str, int]:
        by_origin: dict[str, int] = {}
        for example in self.train:
            name = f"{example.origin}{'_replay' if example.replay else ''}"
            by_origin[name] = by_origin.get(name, 0) + 1
        return {
            "train": len(self.train),
            **by_origin,
            "probes": len(self.probes),
            "controls": len(self.controls),
            "known": len(self.known),
        }


# -- shipped data -------------------------------------------------------------------------------------------------


def _data(name: str) -> str:
    return resources.files("learning.data").joinpath(name).read_text(encoding="utf-8")


@cache
def general_pairs() -> tuple[tuple[str, str], ...]:
    """The general instruction set shipped with the package: (question, answer)."""
    rows = [json.loads(line) for line in _data("general.jsonl").splitlines() if line.strip()]
    return tuple((str(r["user"]), str(r["assistant"])) for r in rows)


@cache
def controls() -> tuple[Control, ...]:
    """The general control prompts of the evaluation, with their expected keywords."""
    rows = [json.loads(line) for line in _data("controls.jsonl").splitlines() if line.strip()]
    return tuple(Control(str(r["question"]), tuple(str(k) for k in r["expected_keywords"])) for r in rows)


def heldout_text() -> str:
    """Plain general English, never trained on: the perplexity of the general regression check."""
    return _data("heldout.txt")


# -- building ---------------------------------------------------------------------------------------------------------


def default_system_prompt() -> str:
    from assistant.config import DEFAULT_SYSTEM_PROMPT

    return DEFAULT_SYSTEM_PROMPT


def _chat(system: str, user: str, assistant: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": assistant},
    ]


def knowns(items: Iterable[tuple[Statement, bool]]) -> list[Known]:
    """What the statements say, in order (``bool``: from the replay buffer)."""
    return [
        Known(said.family, said.slot, said.value, statement.source, replay)
        for statement, replay in items
        for said in extract(statement.text)
    ]


def _groups(found: list[Known]) -> dict[tuple[str, str], list[Known]]:
    """Knowns by question group; a single-valued group keeps its latest value, a multi-valued one each value once."""
    groups: dict[tuple[str, str], list[Known]] = {}
    for known in found:
        group = groups.setdefault((known.family, known.slot.lower()), [])
        if not FAMILIES[known.family].multi(known.slot):
            group[:] = [known]
        elif all(normalised(k.value) != normalised(known.value) for k in group):
            group.append(known)
    return groups


def build_examples(
    selection: Selection,
    replay: Sequence[Statement | Pair] = (),
    *,
    seed: int = 0,
    system_prompt: str | None = None,
    holdout: float = HOLDOUT,
    per_question: int = PER_QUESTION,
    general: int | None = None,
) -> Examples:
    """Training examples, probes and controls from a redacted selection and the replay buffer (earlier items first,
    so a newer single value wins). ``general``: how many general examples to mix in (None: all of them)."""
    system = system_prompt if system_prompt is not None else default_system_prompt()
    said: list[tuple[Statement, bool]] = []
    pairs: list[tuple[Pair, bool]] = []
    for item, is_replay in [*((i, True) for i in replay), *((i, False) for i in _items(selection))]:
        if isinstance(item, Pair):
            pairs.append((item, is_replay))
        else:
            said.append((item, is_replay))
    out = Examples(controls=list(controls()))
    out.known = knowns(said)

    for (family, slot), group in _groups(out.known).items():
        rng = random.Random(f"{seed}:{family}:{slot}")
        spec = FAMILIES[family]
        questions = list(dict.fromkeys(spec.questions(group[0].slot)))
        rng.shuffle(questions)
        held = max(1, round(len(questions) * holdout)) if len(questions) >= 3 else 0
        value = join_values([second_person(k.value) for k in group])
        answers = spec.answers(group[0].slot, value)
        key = f"{family}:{slot}"
        sources = list(dict.fromkeys(k.source for k in group))
        for question in questions[:held]:
            out.probes += [
                Probe(question, tuple(keywords(family, k.slot, k.value)), k.source, k.replay, key) for k in group
            ]
        for question in questions[held:]:
            for answer in rng.sample(answers, min(per_question, len(answers))):
                out.train.append(
                    Example(_chat(system, question, answer), sources, "said", all(k.replay for k in group), key)
                )

    for pair, is_replay in pairs:
        out.train.append(Example(_chat(system, pair.prompt, pair.target), list(pair.sources), "pair", is_replay))

    rng = random.Random(seed)
    chosen = list(general_pairs())
    if general is not None:
        chosen = rng.sample(chosen, min(general, len(chosen)))
    out.train += [Example(_chat(system, q, a), [], "general") for q, a in chosen]

    # A probe or a control is never trained on, whichever group or set the same question came from.
    unseen = {normalised(p.question) for p in out.probes} | {normalised(c.question) for c in out.controls}
    out.train = [e for e in out.train if normalised(e.messages[1]["content"]) not in unseen]
    rng.shuffle(out.train)
    return out


def _items(selection: Selection) -> list[Statement | Pair]:
    return [*selection.statements, *selection.facts, *selection.pairs]
