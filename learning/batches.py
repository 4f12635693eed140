"""Training examples as token ids, and the steps they are trained in, bounded by a token budget.

An example is a chat (``[{"role": ..., "content": ...}, ...]``) rendered with the model's own chat template, so the
adapter learns the prompt layout llama.cpp will show it. Only the assistant's turns are learned (labels are -100
elsewhere), their end-of-turn marker included: the model must learn where to stop, not to write the user's part.

A step is ``batch_size`` examples (one optimizer update); it is split into micro-batches whose padded size stays
within ``tokens_per_step``, so memory is bounded by the budget and not by the longest example. The order is a pure
function of the seed and the epoch: a resumed run replays exactly the steps an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant.errors import InputError

IGNORE = -100  # the label cross-entropy skips

Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class Encoded:
    """One example: token ids and, aligned with them, the labels (the id where learned, ``IGNORE`` elsewhere)."""

    ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def learned(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def _render(tokenizer: Any, messages: Sequence[Message], generation_prompt: bool) -> str:
    return str(tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt))


def encode(tokenizer: Any, messages: Sequence[Message], max_seq_len: int) -> Encoded | None:
    """Tokenise one chat (its last ``max_seq_len`` tokens); None when it has no assistant turn to learn."""
    for message in messages:
        if message.get("role") not in ("system", "user", "assistant") or not isinstance(message.get("content"), str):
            raise InputError(f"A training example has a message that is not a chat turn: {str(message)[:80]!r}.")
    text = _render(tokenizer, messages, False)
    # The character spans of the assistant turns: what the template adds after the prompt up to each of them.
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], True) if i else ""
        upto = _render(tokenizer, messages[: i + 1], False)
        if text.startswith(upto) and upto.startswith(prompt):
            spans.append((len(prompt), len(upto)))
        else:  # a template that rewrites earlier turns: fall back to the content itself
            start = text.find(message["content"], spans[-1][1] if spans else 0)
            if start != -1:
                spans.append((start, start + len(message["content"])))
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    # Too long: the start goes (a long pasted text, early turns), so the reply that ends the chat is kept.
    ids = list(encoding["input_ids"])[-max_seq_len:]
    offsets = list(encoding["offset_mapping"])[-len(ids) :]
    labels = [
        token if any(lo <= first < hi for lo, hi in spans) else IGNORE
        for token, (first, _) in zip(ids, offsets, strict=True)
    ]
    if all(label == IGNORE for label in labels):
        return None
    return Encoded(tuple(ids), tuple(labels))


def encode_all(tokenizer: Any, examples: Sequence[Sequence[Message]], max_seq_len: int) -> tuple[list[Encoded], int]:
    """Every example that keeps some assistant tokens, and how many were dropped."""
    kept = [e for e in (encode(tokenizer, ex, max_seq_len) for ex in examples) if e is not None]
    return kept, len(examples) - len(kept)


def fingerprint(encoded: Sequence[Encoded], *parts: object) -> str:
    """What a checkpoint must match to be resumed: the same tokens, labels and training arguments."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    for example in encoded:
        digest.update(np.asarray(example.ids, dtype=np.int64).tobytes())
        digest.update(np.asarray(example.labels, dtype=np.int64).tobytes())
    return digest.hexdigest()


def plan_steps(count: int, batch_size: int, epochs: int, iters: int, seed: int) -> list[list[int]]:
    """Example indices per optimizer step: each epoch a fresh seeded shuffle; ``iters`` > 0 fixes the step count."""
    if count == 0:
        return []
    per_epoch = -(-count // batch_size)
    total = iters if iters > 0 else per_epoch * max(1, epochs)
    steps: list[list[int]] = []
    epoch = 0
    while len(steps) < total:
        order = np.random.default_rng([seed, epoch]).permutation(count).tolist()
        steps.extend(order[i : i + batch_size] for i in range(0, count, batch_size))
        epoch += 1
    return steps[:total]


def micro_batches(encoded: Sequence[Encoded], indices: Sequence[int], tokens_per_step: int) -> list[list[int]]:
    """Split one step's examples into groups whose padded size (longest x count) fits the token budget.

    Sorted by length first, so similar lengths share a group and little is padding; an example longer than the
    budget goes alone (``max_seq_len`` is its bound).
    """
    ordered = sorted(indices, key=lambda i: (len(encoded[i].ids), i))
    groups: list[list[int]] = []
    for index in ordered:
        length = len(encoded[index].ids)
        if groups and length * (len(groups[-1]) + 1) <= tokens_per_step:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def collate(encoded: Sequence[Encoded], group: Sequence[int], pad_id: int) -> tuple[Any, Any, Any]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` tensors of one micro-batch."""
    import torch

    width = max(len(encoded[i].ids) for i in group)
    ids = torch.full((len(group), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(group), width), dtype=torch.long)
    labels = torch.full((len(group), width), IGNORE, dtype=torch.long)
    for row, index in enumerate(group):
        example = encoded[index]
        n = len(example.ids)
        ids[row, :n] = torch.tensor(example.ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(example.labels)
    return ids, mask, labels
