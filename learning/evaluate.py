"""Evaluate: is the new adapter better for the user, and no worse as an assistant? Then the gate that decides.

Three models are scored on the same questions, all in the training process with transformers (fp32, greedy, the
assistant's system prompt and the model's chat template), so they differ only by their adapter:

- the base model: peft's ``disable_adapter()`` over the candidate's own model, no second copy;
- the current adapter (the active one, when there is one): its saved peft weights loaded beside the candidate's
  as a second named adapter and switched to (``load_adapter`` + ``set_adapter``: a fraction of a second, a few MiB);
  evaluating its GGUF through llama.cpp instead would score a quantised base against an fp32 one, and the
  gate compares scores, so the three must share a runtime;
- the candidate.

What is scored: the personal probes (paraphrased questions about the user, held out from training), the general
controls (questions whose answers must keep their keywords) and the perplexity of held-out general English. The
base model's control answers and perplexity depend only on the base model and the shipped data, so they are cached
per base model in the cache dir (no user data in them).

The gate (:func:`decide`): promote only when the personal score beats the current one's (the base model's when
no adapter is active), the controls stay within 5 points of the base model, and the perplexity is at most 5 %
above the base model's. Each failed rule is one sentence.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from learning.base_model import learning_cache_dir
from learning.examples import Control, Probe, heldout_text
from learning.strength import STRENGTHS, scaled
from storage.paths import ensure_private_dir, make_private

MAX_NEW_TOKENS = 40  # enough for a one-sentence answer; the keywords come early or not at all
BATCH = 16  # questions generated together (left-padded); bounds memory and keeps the batch's padding small
PPL_WINDOW = 512  # tokens per perplexity window
EVAL_CACHE_FORMAT = 2


@dataclass(frozen=True, slots=True)
class Gate:
    """The promotion rules. A test or a cautious user can tighten them (``assistant learn --min-gain``)."""

    min_gain: float = 0.0  # the personal score must beat the current one by more than this
    max_control_drop: float = 0.05  # controls: at most this far below the base model (5 points)
    max_perplexity_rise: float = 0.05  # perplexity: at most this much above the base model's (+5 %)


@dataclass(slots=True)
class Answer:
    question: str
    answer: str
    passed: bool
    expected: list[str] = field(default_factory=list)  # the keywords a right answer contains


@dataclass(slots=True)
class Scores:
    """One model's results: shares of probes and controls passed, perplexity, and every answer."""

    personal: float | None  # None: no probes to ask
    controls: float
    perplexity: float
    probes: list[Answer] = field(default_factory=list)
    control_answers: list[Answer] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The figures without the answers (what the adapter's metrics keep)."""
        return {"personal": self.personal, "controls": self.controls, "perplexity": self.perplexity}


@dataclass(slots=True)
class Evaluation:
    base: Scores
    candidate: Scores
    current: Scores | None  # None: no adapter was active, the base model is what serves
    current_version: int | None = None
    seconds: float = 0.0
    strength: float = 1.0  # the candidate's scores are for the adapter at this strength (``learning.strength``)
    tried: list[dict[str, Any]] = field(default_factory=list)  # each strength tried: its scores and whether it passed

    @property
    def serving(self) -> Scores:
        """What the user gets now: the current adapter, else the base model."""
        return self.current if self.current is not None else self.base

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base.to_dict(),
            "candidate": self.candidate.to_dict(),
            "current": self.current.to_dict() if self.current else None,
            "current_version": self.current_version,
            "seconds": round(self.seconds, 2),
            "strength": self.strength,
            "tried": self.tried,
        }


@dataclass(slots=True)
class Decision:
    promote: bool
    reasons: list[str]  # one sentence per failed rule (empty when promoted)
    passed: list[str]  # one sentence per rule met

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- generation and perplexity --------------------------------------------------------------------------------------


def _prompt(tokenizer: Any, system: str, question: str) -> str:
    chat = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return str(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))


def generate(
    model: Any, tokenizer: Any, questions: Sequence[str], system: str, max_new_tokens: int = MAX_NEW_TOKENS
) -> list[str]:
    """Greedy answers, in order, in left-padded batches."""
    import torch

    answers: list[str] = []
    side, pad = tokenizer.padding_side, tokenizer.pad_token
    tokenizer.padding_side = "left"  # a batch's answers all start right after their own prompt
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    try:
        for start in range(0, len(questions), BATCH):
            texts = [_prompt(tokenizer, system, q) for q in questions[start : start + BATCH]]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            with torch.no_grad():
                out = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
            width = batch["input_ids"].shape[1]
            answers += [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out]
    finally:
        tokenizer.padding_side, tokenizer.pad_token = side, pad
    return answers


def perplexity(model: Any, tokenizer: Any, text: str, window: int = PPL_WINDOW) -> float:
    """exp(mean next-token loss) over ``text``, in windows of ``window`` tokens."""
    import torch

    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, window):
            chunk = ids[start : start + window + 1].unsqueeze(0).to(device)
            if chunk.shape[1] < 2:
                break
            loss = model(input_ids=chunk, labels=chunk).loss
            n = chunk.shape[1] - 1
            total += float(loss) * n
            count += n
    return math.exp(total / max(1, count))


def _answers(questions: Sequence[Any], replies: list[str]) -> list[Answer]:
    return [
        Answer(q.question, r, q.passes(r), list(q.expected_keywords)) for q, r in zip(questions, replies, strict=True)
    ]


def _share(answers: list[Answer]) -> float:
    return sum(a.passed for a in answers) / len(answers) if answers else 0.0


def score(
    model: Any,
    tokenizer: Any,
    probes: Sequence[Probe],
    controls: Sequence[Control],
    system: str,
    *,
    general: Scores | None = None,
) -> Scores:
    """Score one model; ``general`` (controls and perplexity known already) skips those."""
    started = time.perf_counter()
    model.eval()
    asked = [p.question for p in probes] + ([] if general else [c.question for c in controls])
    replies = generate(model, tokenizer, asked, system)
    probe_answers = _answers(probes, replies[: len(probes)])
    if general is None:
        control_answers = _answers(controls, replies[len(probes) :])
        ppl = perplexity(model, tokenizer, heldout_text())
        controls_share = _share(control_answers)
    else:
        control_answers, ppl, controls_share = general.control_answers, general.perplexity, general.controls
    return Scores(
        _share(probe_answers) if probes else None,
        controls_share,
        ppl,
        probe_answers,
        control_answers,
        time.perf_counter() - started,
    )


# -- the three models -----------------------------------------------------------------------------------------------


def _general_key(base_folder: str, controls: Sequence[Control], system: str) -> str:
    digest = hashlib.sha256()
    for part in (base_folder, system, heldout_text(), str(MAX_NEW_TOKENS), str(EVAL_CACHE_FORMAT)):
        digest.update(part.encode() + b"\0")
    for control in controls:
        digest.update(json.dumps([control.question, list(control.expected_keywords)]).encode())
    return digest.hexdigest()[:16]


def _cached_general(path: Path) -> Scores | None:
    try:
        data = json.loads(path.read_text())
        return Scores(
            None,
            float(data["controls"]),
            float(data["perplexity"]),
            [],
            [Answer(**a) for a in data["control_answers"]],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_general(path: Path, scores: Scores) -> None:
    data = {
        "controls": scores.controls,
        "perplexity": scores.perplexity,
        "control_answers": [asdict(a) for a in scores.control_answers],
    }
    try:
        ensure_private_dir(path.parent)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        make_private(tmp)
        os.replace(tmp, path)
    except OSError:
        pass  # only a cache: the next run computes it again


def evaluate(
    model: Any,
    tokenizer: Any,
    base_folder: str,
    probes: Sequence[Probe],
    controls: Sequence[Control],
    system: str,
    *,
    current: Path | None = None,
    current_version: int | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Evaluation:
    """Score the base model, the current adapter (its peft folder ``current``, if any) and the candidate (the
    peft ``model``'s own adapter)."""
    started = time.perf_counter()
    say = on_step or (lambda _: None)
    cache = learning_cache_dir() / f"eval-{_general_key(base_folder, controls, system)}.json"
    known = _cached_general(cache)
    say("base model")
    with model.disable_adapter():
        base = score(model, tokenizer, probes, controls, system, general=known)
    if known is None:
        _save_general(cache, base)
    current_scores = None
    if current is not None:
        say(f"current adapter v{current_version}" if current_version else "current adapter")
        with _other_adapter(model, current):
            current_scores = score(model, tokenizer, probes, controls, system)
    say("candidate")
    candidate = score(model, tokenizer, probes, controls, system)
    return Evaluation(base, candidate, current_scores, current_version, time.perf_counter() - started)


@contextmanager
def _other_adapter(model: Any, folder: Path) -> Iterator[None]:
    """Switch the peft model to the adapter saved in ``folder`` for the block, then back to its own."""
    own = model.active_adapter
    model.load_adapter(str(folder), adapter_name="current", is_trainable=False)
    try:
        model.set_adapter("current")
        yield
    finally:
        model.set_adapter(own)
        model.delete_adapter("current")


# -- the gate -------------------------------------------------------------------------------------------------------


def decide(evaluation: Evaluation, gate: Gate | None = None) -> Decision:
    """Promote, or keep what serves now and say why (one sentence per failed rule)."""
    gate = gate or Gate()
    reasons: list[str] = []
    passed: list[str] = []
    for ok, sentence in (_personal(evaluation, gate), _controls(evaluation, gate), _perplexity(evaluation, gate)):
        (passed if ok else reasons).append(sentence)
    full = evaluation.tried[0] if evaluation.tried else None
    if not reasons and evaluation.strength < 1 and full:
        passed.append(
            f"It is applied at {evaluation.strength:.0%} strength: at full strength it got {full['controls']:.0%} "
            f"of the general questions right and perplexity {full['perplexity']:.2f}."
        )
    weaker = [t["strength"] for t in evaluation.tried[1:]]
    if reasons and weaker:
        reasons.append(f"Weaker versions of it ({', '.join(f'{w:.0%}' for w in weaker)} strength) did not pass either.")
    return Decision(not reasons, reasons, passed)


def _personal(evaluation: Evaluation, gate: Gate) -> tuple[bool, str]:
    cand, serving = evaluation.candidate, evaluation.serving
    against = f"adapter v{evaluation.current_version}" if evaluation.current is not None else "the base model"
    mine, theirs = cand.personal or 0.0, serving.personal or 0.0
    if cand.personal is None:
        return False, "There were no held-out questions about you to check the new adapter on."
    if mine - theirs > gate.min_gain:
        return True, f"It answers {mine:.0%} of the held-out questions about you, {against} {theirs:.0%}."
    return False, (
        f"It answers {mine:.0%} of the held-out questions about you, no better than {against} ({theirs:.0%})"
        + (f" by more than {gate.min_gain:.0%}." if gate.min_gain else ".")
    )


def _controls(evaluation: Evaluation, gate: Gate) -> tuple[bool, str]:
    base, cand = evaluation.base, evaluation.candidate
    if base.controls - cand.controls <= gate.max_control_drop + 1e-9:
        return True, f"General questions kept: {cand.controls:.0%} right, the base model {base.controls:.0%}."
    return False, (
        f"It got {cand.controls:.0%} of the general control questions right against the base model's "
        f"{base.controls:.0%}, more than {gate.max_control_drop * 100:.0f} points worse."
    )


def _perplexity(evaluation: Evaluation, gate: Gate) -> tuple[bool, str]:
    base, cand = evaluation.base, evaluation.candidate
    rise = cand.perplexity / base.perplexity - 1 if base.perplexity > 0 else 0.0
    if rise <= gate.max_perplexity_rise + 1e-9:
        return True, f"Perplexity on general text {cand.perplexity:.2f}, the base model {base.perplexity:.2f}."
    return False, (
        f"Its perplexity on general text is {rise:+.1%} over the base model's ({cand.perplexity:.2f} against "
        f"{base.perplexity:.2f}), more than the {gate.max_perplexity_rise:.0%} allowed."
    )


def search_strength(
    model: Any,
    tokenizer: Any,
    evaluation: Evaluation,
    probes: Sequence[Probe],
    controls: Sequence[Control],
    system: str,
    gate: Gate | None = None,
    strengths: Sequence[float] = STRENGTHS,
    on_step: Callable[[str], None] | None = None,
) -> Evaluation:
    """The evaluation of the strongest version of the candidate that passes the gate (``learning.strength``).

    At full strength (``evaluation`` as ``evaluate`` made it) a candidate that knows the user but costs general
    answers or perplexity is tried again weaker, strength by strength, until one passes; the search stops as soon as
    a version no longer beats what serves on the questions about the user. Returns the passing version's evaluation,
    or the full-strength one when none passes; ``tried`` lists every version scored either way. The peft ``model``
    is left as it was: the caller makes the chosen strength permanent (``learning.strength.scale_saved``).
    """
    gate = gate or Gate()
    say = on_step or (lambda _: None)
    full = replace(evaluation, strength=1.0, tried=[])
    full.tried.append(_trial(full, gate))
    if full.tried[0]["passed"] or not _personal(full, gate)[0]:
        return full
    for factor in strengths:
        if factor >= 1.0:
            continue
        say(f"candidate at {factor:.0%} strength")
        started = time.perf_counter()
        with scaled(model, factor):
            scores = score(model, tokenizer, probes, controls, system)
        weaker = replace(full, candidate=scores, strength=factor, seconds=full.seconds + time.perf_counter() - started)
        full.tried.append(_trial(weaker, gate))
        full.seconds = weaker.seconds
        if full.tried[-1]["passed"]:
            weaker.tried = full.tried
            return weaker
        if not _personal(weaker, gate)[0]:
            break
    return full


def _trial(evaluation: Evaluation, gate: Gate) -> dict[str, Any]:
    """One version's line in ``Evaluation.tried``: its scores and whether it passed the gate on its own."""
    alone = replace(evaluation, tried=[])
    return {"strength": evaluation.strength, **evaluation.candidate.summary(), "passed": decide(alone, gate).promote}
