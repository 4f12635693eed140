"""Self-distilled general examples: the general instruction set answered by the base model itself (``Mix.self_distil``,
off by default).

The idea: training on the base model's own answers asks the adapter to keep saying what the base model says. Measured
(see ``learning.job.Mix``), it kept the control answers no better than the shipped answers and raised perplexity on
held-out prose by 14 % where the shipped answers lowered it by 7 %: greedy answers are the model's mode, and training
on them sharpens the model. Also tried and dropped: the base model's own prose paragraphs beside them (+19 %). Kept as
an option for other base models. The answers are generated once and cached per base model in the cache dir (no user
data in them); answers that loop are replaced by the shipped ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from learning.base_model import BaseModel, learning_cache_dir
from learning.evaluate import generate
from learning.examples import Examples, general_pairs
from storage.paths import ensure_private_dir, make_private

MAX_NEW_TOKENS = 64
FORMAT = 1


def _cache_path(base: BaseModel, system: str, kind: str, questions: list[str], tokens: int) -> Path:
    digest = hashlib.sha256(f"{base.folder.name}\0{system}\0{tokens}\0{FORMAT}".encode())
    for question in questions:
        digest.update(question.encode() + b"\0")
    return learning_cache_dir() / f"{kind}-{digest.hexdigest()[:16]}.json"


def general_answers(base: BaseModel, system: str) -> dict[str, str]:
    """The base model's greedy answer to every shipped general question (the adapter off, if one is injected)."""
    return _answers(base, system, "general", [q for q, _ in general_pairs()], MAX_NEW_TOKENS)


def _answers(base: BaseModel, system: str, kind: str, questions: list[str], tokens: int) -> dict[str, str]:
    path = _cache_path(base, system, kind, questions, tokens)
    try:
        cached = json.loads(path.read_text())
        if isinstance(cached, dict) and cached:
            return {str(k): str(v) for k, v in cached.items()}
    except (OSError, ValueError):
        pass
    answers = generate(_plain(base.model), base.tokenizer, questions, system, tokens)
    found = {q: _whole_sentences(a) for q, a in zip(questions, answers, strict=True)}
    try:
        ensure_private_dir(path.parent)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(found, ensure_ascii=False))
        make_private(tmp)
        os.replace(tmp, path)
    except OSError:
        pass  # only a cache
    return found


def _plain(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _whole_sentences(answer: str) -> str:
    """An answer cut at the token limit ends at its last full sentence (a cut answer would teach stopping short)."""
    answer = answer.strip()
    if answer.endswith((".", "!", "?")):
        return answer
    cut = max(answer.rfind(". "), answer.rfind("! "), answer.rfind("? "))
    return answer[: cut + 1] if cut > 0 else answer


def degenerate(answer: str) -> bool:
    """A greedy loop ("el Turco, el Turco, ..."): some three words recur three times or more. Such an answer is
    not trained on (the shipped answer is, instead): it would teach the loop."""
    words = answer.casefold().split()
    seen: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - 2):
        key = tuple(words[i : i + 3])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] >= 3:
            return True
    return not answer.strip()


def distil_general(examples: Examples, base: BaseModel, system: str) -> Examples:
    """The examples with each general answer replaced by the base model's own, where that is not a loop."""
    answers = general_answers(base, system)
    train = []
    for example in examples.train:
        mine = answers.get(example.messages[1]["content"], "") if example.origin == "general" else ""
        if mine and not degenerate(mine):
            messages = [*example.messages[:2], {"role": "assistant", "content": mine}]
            example = replace(example, messages=messages)
        train.append(example)
    return replace(examples, train=train)
