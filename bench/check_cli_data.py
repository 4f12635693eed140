"""Realistic input for `assistant check` throughput: 300-500 character replies with a context of a few passages.

Each line is a reply made of several answers about one made-up user (from the grounding set: some grounded, some
inventing a detail), and about one line in three carries a sentence with personal data or a secret (from the
privacy set), half of those typed by the user. The context is the passages the grounding set gives that user
(memories, earlier messages, a passage about a place, a distractor): about 800 characters, 8-12 sentences. Some
five lines share each context, as the replies of one conversation share theirs, but no answer is used twice (a
cache of repeated claims would flatter the figure); the lines are shuffled, so those five are far apart.
Deterministic for a seed.
"""

from __future__ import annotations

import random
from typing import Any

from bench import check_grounding_data, check_privacy_data

MIN_CHARS, MAX_CHARS = 300, 500
PER_USER = 5  # lines one user's answers (28 of ~70 characters) can fill


def build(count: int = 2000, seed: int = 3, context: bool = True) -> list[dict[str, Any]]:
    """``count`` input objects ({"text", "context", "user_inputs"}); without ``context``, text only."""
    rng = random.Random(seed)
    answers: dict[tuple[str, ...], list[str]] = {}
    for item in check_grounding_data.build(seed, users=count // PER_USER + 20):
        answers.setdefault(tuple(item.context), []).append(item.answer)
    pii = [item for item in check_privacy_data.build(seed) if item.spans]
    lines: list[dict[str, Any]] = []
    for sources, pool in answers.items():
        rng.shuffle(pool)
        while len(lines) < count:
            text = ""
            user_inputs: list[str] = []
            if rng.random() < 1 / 3:
                sensitive = rng.choice(pii)
                text = sensitive.text
                if rng.random() < 0.5:
                    start, end, _ = sensitive.spans[0]
                    user_inputs.append(f"my details: {sensitive.text[start:end]}")
            wanted = rng.randint(MIN_CHARS, MAX_CHARS - 80)
            while pool and len(text) < wanted:
                answer = pool.pop()
                if len(text) + len(answer) < MAX_CHARS:
                    text = f"{text} {answer}".strip()
            if len(text) < MIN_CHARS:
                break  # this user's answers are used up
            line: dict[str, Any] = {"text": text}
            if context:
                line["context"] = list(sources)
            if user_inputs:
                line["user_inputs"] = user_inputs
            lines.append(line)
    rng.shuffle(lines)
    if len(lines) < count:
        raise ValueError(f"only {len(lines)} lines could be made; raise PER_USER's users")
    return lines
