"""Self-distilled general examples: the general instruction set answered by the base model itself.

Training on hand-written answers to general questions still moves the model (its own words are not those), and
measured controls fell from 0.91 to 0.55-0.59 that way (platform facts). Training on the base model's own greedy
answers instead asks the adapter to keep saying what the base model says: it anchors general behaviour rather
than teaching new behaviour. The answers depend only on the base model, the system prompt and the shipped
questions, so they are generated once and cached per base model in the cache dir (no user data in them).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from learning.base_model import BaseModel, learning_cache_dir
from learning.evaluate import generate
from learning.examples import Example, Examples, general_pairs
from storage.paths import ensure_private_dir, make_private

MAX_NEW_TOKENS = 64
PROSE_TOKENS = 160
FORMAT = 1
# Requests for a paragraph of plain prose (topics apart from the held-out text's). The personal answers are
# short ("Your dog is called Biscuit."), and training on them alone made the model end sentences early in any
# text (measured: "." and the end-of-turn marker gained most of the perplexity rise on held-out prose). The base
# model's own paragraphs, trained beside them, keep its way of writing on.
PROSE_PROMPTS = (
    "Write a paragraph about a walk through an autumn forest.",
    "Describe a busy train station in the morning.",
    "Write a short paragraph explaining how bees make honey.",
    "Describe the life of a lighthouse keeper in a few sentences.",
    "Write a paragraph about why people enjoy gardening.",
    "Explain in a paragraph how a bicycle works.",
    "Describe a thunderstorm over a city at night.",
    "Write a paragraph about the history of bread.",
    "Describe a quiet library on a rainy afternoon.",
    "Write a paragraph about how volcanoes form.",
    "Describe a small harbour town in summer.",
    "Write a paragraph about the benefits of reading books.",
    "Explain in a paragraph how the moon affects the tides.",
    "Describe a mountain village in winter.",
    "Write a paragraph about how a seed grows into a plant.",
    "Describe a market in a big city on a Saturday.",
)


def _cache_path(base: BaseModel, system: str, kind: str, questions: list[str], tokens: int) -> Path:
    digest = hashlib.sha256(f"{base.folder.name}\0{system}\0{tokens}\0{FORMAT}".encode())
    for question in questions:
        digest.update(question.encode() + b"\0")
    return learning_cache_dir() / f"{kind}-{digest.hexdigest()[:16]}.json"


def general_answers(base: BaseModel, system: str) -> dict[str, str]:
    """The base model's greedy answer to every shipped general question (the adapter off, if one is injected)."""
    return _answers(base, system, "general", [q for q, _ in general_pairs()], MAX_NEW_TOKENS)


def prose_answers(base: BaseModel, system: str) -> dict[str, str]:
    """The base model's own paragraph for each of :data:`PROSE_PROMPTS`."""
    return _answers(base, system, "prose", list(PROSE_PROMPTS), PROSE_TOKENS)


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


def distil_general(examples: Examples, base: BaseModel, system: str, prose: int = 0) -> Examples:
    """The examples with each general answer replaced by the base model's own, where that is not a loop, and
    ``prose`` of the base model's own paragraphs added."""
    answers = general_answers(base, system)
    train = []
    for example in examples.train:
        mine = answers.get(example.messages[1]["content"], "") if example.origin == "general" else ""
        if mine and not degenerate(mine):
            messages = [*example.messages[:2], {"role": "assistant", "content": mine}]
            example = replace(example, messages=messages)
        train.append(example)
    if prose:
        paragraphs = prose_answers(base, system)
        for prompt in PROSE_PROMPTS[:prose]:
            text = paragraphs.get(prompt, "")
            if text and not degenerate(text):
                chat = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
                train.append(Example([*chat, {"role": "assistant", "content": text}], [], "general"))
        random.Random(len(train)).shuffle(train)
    return replace(examples, train=train)
