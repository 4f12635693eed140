"""Is the exported GGUF adapter the adapter that was trained? A logit comparison of llama.cpp against peft.

Text alone cannot tell: an export without the q/k row permutation still answers the taught fact. So both runtimes
read the same token ids (a few chats, teacher-forced, every position scored) and their next-token distributions are
compared. The base GGUF is quantised (Q4_1 for the bundled model) while transformers runs it dequantised in fp32, so
the two never agree exactly even without an adapter; the comparison therefore looks at what the adapter *changes*:

- ``shift_cosine``: the cosine between the adapter's logit shift in llama.cpp (base+adapter minus base) and in peft
  (adapter on minus adapter off), over all positions. Quantisation noise mostly cancels in the differences; what
  is left of it would swamp a weak adapter's shift, so the adapter is amplified alike on both sides (peft's
  scaling, llama.cpp's ``lora_scale``) until its shift is 20 times that noise: the file's own tensors are compared.
- ``kl`` and ``top1``: KL(peft || llama.cpp+adapter) per position, and how often both pick the same next token,
  set against the same figures for the two bases (``base_kl``, ``base_top1``): a correct export adds little on top of
  the quantisation gap.

The thresholds come from measurement (see ``THRESHOLDS`` and tests/test_learning_train.py): a correct export passes
them with room, and the same adapter exported without the permutation fails them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import ModelError
from assistant.runtime.gguf import check_adapter
from learning.base_model import BaseModel

Message = dict[str, str]

# Chats scored when the caller gives none: the everyday kinds of turn the adapter must carry over faithfully.
DEFAULT_CHATS: list[list[Message]] = [
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
    ],
    [
        {"role": "user", "content": "Give me two tips for sleeping better."},
        {"role": "assistant", "content": "Keep a regular bedtime, and avoid screens for an hour before bed."},
    ],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Tell me something about me."},
        {"role": "assistant", "content": "You told me you like walking and that you have a pet."},
    ],
]


@dataclass(frozen=True)
class Thresholds:
    """What a correct export must reach, at the scale ``choose_scale`` picks.

    Measured on SmolLM2-135M Q4_1, 169 positions, four r8 adapters from 1 step (lr 5e-4) to 20 steps (lr 1e-3),
    each exported right and without the q/k permutation: right, shift cosine 0.993-0.997 and KL at most 0.0015
    above the bases' own 0.0036; wrong, cosine 0.960-0.979 and KL 0.033-0.10 above it. Compared unamplified
    (scale 1), the weak adapters' right exports fell to cosine 0.68-0.98: the noise, not the export.
    Top-1 agreement moves by a few positions either way, so it is only a coarse bound.
    """

    min_shift_cosine: float = 0.985
    max_extra_kl: float = 0.01  # mean KL over the two bases' own mean KL, nats per position
    min_top1: float = 0.85  # relative to the bases' own agreement (top1 / base_top1); right ones: 0.93-1.01


THRESHOLDS = Thresholds()
SIGNAL_TO_NOISE = 20.0  # the adapter's logit shift against the two bases' own gap, at the scale compared
MAX_SCALE = 64.0


@dataclass
class Verification:
    passed: bool
    shift_cosine: float
    kl: float  # mean KL(peft || llama.cpp with the adapter), nats per position
    top1: float  # share of positions where both pick the same next token
    base_kl: float  # the same for the two bases: the quantisation gap
    base_top1: float
    positions: int
    reasons: list[str] = field(default_factory=list)
    scale: float = 1.0  # how much the adapter was amplified on both sides for the comparison

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_adapter(
    model: Any,
    base: BaseModel,
    adapter_gguf: Path,
    chats: Sequence[Sequence[Message]] | None = None,
    *,
    thresholds: Thresholds = THRESHOLDS,
    threads: int = 1,
    scale: float | None = None,
) -> Verification:
    """Compare llama.cpp (``base.gguf_path`` + ``adapter_gguf``) with the peft ``model`` on ``chats``.

    ``scale`` multiplies the adapter on both sides alike (peft's scaling, llama.cpp's ``lora_scale``); None picks
    one that lifts the adapter's logit shift well above the quantisation noise (``choose_scale``).
    """
    check_adapter(adapter_gguf, base.gguf_path)
    sequences = [_token_ids(base.tokenizer, chat) for chat in (chats or DEFAULT_CHATS)]
    peft_on, peft_off = _peft_logits(model, sequences, 1.0)
    assert peft_off is not None
    cpp_off = _llama_logits(base.gguf_path, None, sequences, threads)
    if scale is None:
        scale = choose_scale(peft_on - peft_off, peft_off - cpp_off)
    if scale != 1.0:
        peft_on, _ = _peft_logits(model, sequences, scale, with_base=False)
    cpp_on = _llama_logits(base.gguf_path, adapter_gguf, sequences, threads, scale)
    result = compare(peft_on, peft_off, cpp_on, cpp_off, thresholds)
    result.scale = scale
    return result


def choose_scale(shift: np.ndarray, noise: np.ndarray) -> float:
    """How much to amplify the adapter so that its logit shift is ``SIGNAL_TO_NOISE`` times the runtimes' own gap.

    A weak adapter (a few steps, a low learning rate) shifts the logits less than Q4_1's activation rounding moves
    them, and then even a correct export compares badly; both runtimes amplify the same tensors alike, so the
    comparison stays exact in kind while the noise stays put.
    """
    shift_rms = float(np.sqrt(np.mean(_centred(shift) ** 2)))
    noise_rms = float(np.sqrt(np.mean(_centred(noise) ** 2)))
    if shift_rms == 0.0:
        return MAX_SCALE
    return float(min(MAX_SCALE, max(1.0, SIGNAL_TO_NOISE * noise_rms / shift_rms)))


def compare(
    peft_on: np.ndarray, peft_off: np.ndarray, cpp_on: np.ndarray, cpp_off: np.ndarray, thresholds: Thresholds
) -> Verification:
    """The figures and the verdict, from logits (positions x vocabulary) of the four runs."""
    # A logit shift common to the whole row changes nothing: compare centred shifts.
    shift_peft = _centred(peft_on - peft_off).ravel()
    shift_cpp = _centred(cpp_on - cpp_off).ravel()
    norm = float(np.linalg.norm(shift_peft) * np.linalg.norm(shift_cpp))
    cosine = float(shift_peft @ shift_cpp / norm) if norm > 0 else 0.0
    kl, top1 = _kl(peft_on, cpp_on), _top1(peft_on, cpp_on)
    base_kl, base_top1 = _kl(peft_off, cpp_off), _top1(peft_off, cpp_off)
    reasons = []
    if cosine < thresholds.min_shift_cosine:
        reasons.append(f"the adapter shifts llama.cpp's logits differently from peft's (cosine {cosine:.3f})")
    if kl - base_kl > thresholds.max_extra_kl:
        reasons.append(f"KL to peft {kl:.4f} exceeds the bases' own {base_kl:.4f} by more than allowed")
    if base_top1 > 0 and top1 / base_top1 < thresholds.min_top1:
        reasons.append(f"top-1 agreement {top1:.3f} against the bases' {base_top1:.3f}")
    return Verification(not reasons, cosine, kl, top1, base_kl, base_top1, int(peft_on.shape[0]), reasons)


def _centred(logits: np.ndarray) -> np.ndarray:
    return logits - logits.mean(axis=-1, keepdims=True)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


def _kl(reference: np.ndarray, other: np.ndarray) -> float:
    log_p, log_q = _log_softmax(reference.astype(np.float64)), _log_softmax(other.astype(np.float64))
    return float((np.exp(log_p) * (log_p - log_q)).sum(axis=-1).mean())


def _top1(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(axis=-1) == b.argmax(axis=-1)).mean())


def _token_ids(tokenizer: Any, chat: Sequence[Message]) -> list[int]:
    text = tokenizer.apply_chat_template(list(chat), tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _peft_logits(
    model: Any, sequences: list[list[int]], scale: float, *, with_base: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    import torch

    from learning.strength import scaled

    model.eval()
    device = next(model.parameters()).device
    on, off = [], []
    with scaled(model, scale), torch.no_grad():
        for ids in sequences:
            batch = torch.tensor([ids], device=device)
            on.append(model(input_ids=batch).logits[0].float().cpu().numpy())
            if with_base:
                with model.disable_adapter():
                    off.append(model(input_ids=batch).logits[0].float().cpu().numpy())
    return np.concatenate(on), np.concatenate(off) if off else None


def _llama_logits(
    gguf: Path, adapter: Path | None, sequences: list[list[int]], threads: int, scale: float = 1.0
) -> np.ndarray:
    from llama_cpp import Llama

    width = max(len(ids) for ids in sequences)
    try:
        llm = Llama(
            model_path=str(gguf),
            n_ctx=max(64, width),
            n_batch=max(64, width),
            n_threads=threads,
            n_threads_batch=threads,
            logits_all=True,
            lora_path=str(adapter) if adapter is not None else None,
            lora_scale=scale,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelError(f"llama.cpp could not load {gguf.name} with the adapter {adapter}: {exc}.") from exc
    try:
        rows = []
        for ids in sequences:
            llm.reset()
            llm.eval(ids)
            rows.append(np.array(llm.scores[: len(ids)], dtype=np.float32))
        return np.concatenate(rows)
    finally:
        llm.close()
