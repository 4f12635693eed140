"""LoRA training with peft on torch: deterministic, resumable, memory bounded by a token budget per micro-batch.

The shape follows mlx-lm's tuner: a dataclass of arguments with help text, and ``train()`` that takes its data and
a progress callback. What is specific here:

- The loss is computed on the assistant tokens only, and the output layer runs only on those positions: the fp32
  logits over a 49k vocabulary are what dominates memory, and most positions (system prompt, question) are never
  learned.
- A step's order of examples, and so the whole run, is a function of the seed (``learning.batches.plan_steps``);
  the LoRA init draws from torch's seeded generator. Same examples + seed + threads -> the same adapter.
- A checkpoint (adapter, optimizer, step, RNG, losses) is written atomically every ``checkpoint_every`` steps and
  whenever the run is stopped between steps (the progress callback raising, a stop event, SIGINT/SIGTERM in the main
  thread). ``train()`` on an ``out_dir`` holding a checkpoint of the same data and arguments resumes from it.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import InputError
from learning import batches
from learning.base_model import BaseModel
from storage.paths import ensure_private_dir

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CHECKPOINT = "checkpoint.pt"
ADAPTER_DIR = "adapter"


@dataclass
class TrainArgs:
    """How an adapter is trained. The defaults are the recipe measured on a 2-core CPU (platform facts).

    Memory, measured on SmolLM2-135M (r16, all linear layers, fp32): the model takes 0.45 GiB; each token of a
    micro-batch adds ~4.2 MiB at the peak (2.6 MiB of saved activations, half of them the LoRA inputs, plus the
    logits of learned positions), so ``tokens_per_step`` 640 peaks near 3.1 GiB and 1024 near 4.7 GiB. With
    ``grad_checkpoint`` 1024 tokens peaked at 3.0 GiB, at about 1.5x the time.
    """

    rank: int = field(default=16, metadata={"help": "LoRA rank: the size of each low-rank update."})
    alpha: float = field(default=32.0, metadata={"help": "LoRA alpha: updates are scaled by alpha / rank."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input during training."})
    target_modules: tuple[str, ...] = field(
        default=ALL_LINEAR,
        metadata={"help": "Linear layers that get an adapter; all seven keep general answers best (measured)."},
    )
    learning_rate: float = field(default=5e-4, metadata={"help": "AdamW learning rate (after warm-up)."})
    warmup_steps: int = field(default=0, metadata={"help": "Steps of linear learning-rate warm-up."})
    lr_schedule: str = field(default="constant", metadata={"help": "After warm-up: 'constant' or 'cosine' decay."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay on the LoRA weights."})
    grad_clip: float = field(default=1.0, metadata={"help": "Clip the gradient norm to this (0: no clipping)."})
    epochs: int = field(default=3, metadata={"help": "Passes over the examples (ignored when iters > 0)."})
    iters: int = field(default=0, metadata={"help": "Optimizer steps in all; 0: epochs x steps per epoch."})
    batch_size: int = field(default=8, metadata={"help": "Examples per optimizer step."})
    max_seq_len: int = field(default=512, metadata={"help": "Tokens kept of each example (its end: the reply)."})
    tokens_per_step: int = field(
        default=640,
        metadata={"help": "Padded tokens per forward pass; a step's batch is split to fit. Bounds memory."},
    )
    grad_checkpoint: bool = field(
        default=False,
        metadata={"help": "Recompute each layer's activations in the backward pass: far less memory, ~30% slower."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the LoRA init, the example order and dropout."})
    threads: int = field(
        default=0, metadata={"help": "torch CPU threads; 0: leave a core free (cores - 1 up to 4 cores, else - 2)."}
    )
    device: str = field(default="auto", metadata={"help": "'auto' (cuda, else mps, else cpu), 'cpu', 'cuda', 'mps'."})
    checkpoint_every: int = field(default=10, metadata={"help": "Write a resumable checkpoint every N steps."})

    def validate(self) -> None:
        checks = {
            "rank": self.rank >= 1,
            "alpha": self.alpha > 0,
            "dropout": 0 <= self.dropout < 1,
            "target_modules": bool(self.target_modules),
            "learning_rate": self.learning_rate > 0,
            "lr_schedule": self.lr_schedule in ("constant", "cosine"),
            "batch_size": self.batch_size >= 1,
            "max_seq_len": self.max_seq_len >= 8,
            "tokens_per_step": self.tokens_per_step >= 8,
            "threads": self.threads >= 0,
            "device": self.device in ("auto", "cpu", "cuda", "mps"),
            "checkpoint_every": self.checkpoint_every >= 1,
            "epochs/iters": self.epochs >= 1 or self.iters >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(f"Training arguments out of range: {', '.join(bad)}.")

    def identity(self) -> dict[str, Any]:
        """The arguments that change the weights (threads, device and checkpointing do not, by design)."""
        values = asdict(self)
        for key in ("threads", "device", "checkpoint_every"):
            values.pop(key)
        return values


@dataclass(frozen=True, slots=True)
class Progress:
    """One optimizer step done."""

    step: int  # 1-based
    total_steps: int
    epoch: float
    loss: float  # mean over the step's learned tokens
    learning_rate: float
    tokens: int  # tokens read this step (padding excluded)
    tokens_per_s: float  # over the run so far (this process)
    elapsed_s: float
    peak_rss_mb: float


@dataclass
class TrainResult:
    adapter_dir: Path  # peft's save_pretrained of the final adapter
    model: Any  # the peft model, ready for evaluation in this process
    losses: list[float]  # per step, from step 1 (a resumed run includes the steps before it)
    steps: int
    tokens: int  # tokens read by this process (a resumed run: since resuming)
    tokens_per_s: float
    elapsed_s: float  # training time in this process
    peak_rss_mb: float
    device: str
    resumed_from: int | None  # the step a checkpoint was resumed at
    examples: int
    dropped: int  # examples with no assistant turn to learn


class Stopped(KeyboardInterrupt):
    """Training stopped between steps (a signal or the stop event); a checkpoint holds what was done."""


def pick_device(wanted: str) -> str:
    import torch

    if wanted != "auto":
        if wanted == "cuda" and not torch.cuda.is_available():
            raise InputError("Training on 'cuda' was asked for, but torch sees no CUDA device.")
        if wanted == "mps" and not torch.backends.mps.is_available():
            raise InputError("Training on 'mps' was asked for, but torch sees no Apple GPU.")
        return wanted
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def default_threads() -> int:
    """One core left free, as for the chat model. torch's OpenMP workers spin-wait like llama.cpp's: measured on
    2 cores with other work running, a step took 20-25 s on 2 threads against 3.2 s on 1 (idle, 2 threads were
    ~1.4x faster than 1). A TUI or an indexer may wake up while the nightly job runs."""
    cores = os.cpu_count() or 1
    return max(1, cores - 1) if cores <= 4 else cores - 2


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def train(
    examples: Sequence[Sequence[dict[str, str]]],
    base: BaseModel,
    out_dir: Path,
    args: TrainArgs,
    on_progress: Callable[[Progress], None] | None = None,
    *,
    stop: threading.Event | None = None,
) -> TrainResult:
    """Train a LoRA adapter on ``examples`` (chats) over ``base``; resume from ``out_dir``'s checkpoint if it has one.

    ``base.model`` gets the LoRA layers injected (peft wraps it in place): load a fresh base per run.
    """
    import torch

    args.validate()
    encoded, dropped = batches.encode_all(base.tokenizer, examples, args.max_seq_len)
    if not encoded:
        raise InputError("No training example has an assistant reply to learn from.")
    out_dir = ensure_private_dir(out_dir)
    device = pick_device(args.device)
    plan = batches.plan_steps(len(encoded), args.batch_size, args.epochs, args.iters, args.seed)
    identity = batches.fingerprint(encoded, args.identity(), base.folder.name)
    pad_id = base.tokenizer.pad_token_id if base.tokenizer.pad_token_id is not None else 0

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or default_threads())
    try:
        torch.manual_seed(args.seed)  # the LoRA init (kaiming for A) draws from it
        model = _with_lora(base.model, args).to(device)
        if args.grad_checkpoint:
            # Non-reentrant: the frozen embeddings' output needs no grad for the LoRA layers' inputs to get one.
            model.get_base_model().gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=args.weight_decay)
        state = _load_checkpoint(out_dir / CHECKPOINT, identity, model, optimizer)
        losses: list[float] = state["losses"] if state else []
        start = len(losses)
        loop = _Loop(model, optimizer, params, encoded, plan, args, device, pad_id)
        tokens = 0
        began = time.perf_counter()
        with _stop_on_signals() as signalled:
            for step in range(start, len(plan)):
                loss, step_tokens, lr = loop.step(step)
                losses.append(loss)
                tokens += step_tokens
                elapsed = time.perf_counter() - began
                done = step + 1
                stopping = signalled.is_set() or (stop is not None and stop.is_set())
                if done % args.checkpoint_every == 0 or stopping:
                    _save_checkpoint(out_dir / CHECKPOINT, identity, model, optimizer, losses)
                if stopping:
                    raise Stopped(f"Training stopped after step {done} of {len(plan)}; the checkpoint resumes it.")
                if on_progress is not None:
                    progress = Progress(
                        done, len(plan), done / max(1, math.ceil(len(encoded) / args.batch_size)), loss, lr,
                        step_tokens, tokens / elapsed if elapsed > 0 else 0.0, elapsed, peak_rss_mb(),
                    )  # fmt: skip
                    try:
                        on_progress(progress)
                    except BaseException:
                        # The step is complete: keep it, so a resume starts right after it.
                        if done % args.checkpoint_every:
                            _save_checkpoint(out_dir / CHECKPOINT, identity, model, optimizer, losses)
                        raise
        elapsed = time.perf_counter() - began
        adapter_dir = out_dir / ADAPTER_DIR
        model.save_pretrained(adapter_dir)
        (out_dir / "train.json").write_text(
            json.dumps({"args": asdict(args), "losses": losses, "examples": len(encoded), "dropped": dropped})
        )
        (out_dir / CHECKPOINT).unlink(missing_ok=True)  # finished: the adapter is the result
        return TrainResult(
            adapter_dir, model, losses, len(plan), tokens, tokens / elapsed if elapsed > 0 else 0.0, elapsed,
            peak_rss_mb(), device, start if state else None, len(encoded), dropped,
        )  # fmt: skip
    finally:
        torch.set_num_threads(previous_threads)


def _with_lora(model: Any, args: TrainArgs) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,  # type: ignore[arg-type]  # peft annotates int, uses it as a float
        lora_dropout=args.dropout,
        target_modules=list(args.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # peft asks transformers a deprecated question; not the user's concern
        warnings.filterwarnings("ignore", category=FutureWarning)
        return get_peft_model(model, config)


class _Loop:
    """One optimizer step: micro-batches within the token budget, gradients summed, loss per learned token."""

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        params: list[Any],
        encoded: list[batches.Encoded],
        plan: list[list[int]],
        args: TrainArgs,
        device: str,
        pad_id: int,
    ) -> None:
        self.model, self.optimizer, self.params = model, optimizer, params
        self.encoded, self.plan, self.args, self.device, self.pad_id = encoded, plan, args, device, pad_id
        self.causal_lm = model.get_base_model()

    def learning_rate(self, step: int) -> float:
        args = self.args
        if step < args.warmup_steps:
            return args.learning_rate * (step + 1) / (args.warmup_steps + 1)
        if args.lr_schedule == "cosine":
            span = max(1, len(self.plan) - args.warmup_steps)
            return args.learning_rate * 0.5 * (1 + math.cos(math.pi * (step - args.warmup_steps) / span))
        return args.learning_rate

    def step(self, step: int) -> tuple[float, int, float]:
        import torch

        self.model.train()
        indices = self.plan[step]
        learned = sum(self.encoded[i].learned for i in indices)
        lr = self.learning_rate(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        tokens = 0
        for group_indices in batches.micro_batches(self.encoded, indices, self.args.tokens_per_step):
            ids, mask, labels = (t.to(self.device) for t in batches.collate(self.encoded, group_indices, self.pad_id))
            loss_sum = self._loss_sum(ids, mask, labels)
            (loss_sum / learned).backward()
            total += float(loss_sum.detach())
            tokens += int(mask.sum())
        if self.args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.args.grad_clip)
        self.optimizer.step()
        return total / learned, tokens, lr

    def _loss_sum(self, ids: Any, mask: Any, labels: Any) -> Any:
        """Summed cross-entropy over the learned positions, the output layer run on those alone."""
        import torch.nn.functional as F

        lm = self.causal_lm
        hidden = lm.model(input_ids=ids, attention_mask=mask).last_hidden_state
        targets = labels[:, 1:]
        chosen = targets != batches.IGNORE
        logits = lm.lm_head(hidden[:, :-1][chosen]).float()
        softcap = getattr(lm.config, "final_logit_softcapping", None)
        if softcap:  # Gemma-style models squash their logits
            logits = softcap * (logits / softcap).tanh()
        return F.cross_entropy(logits, targets[chosen], reduction="sum")


# -- checkpoints -------------------------------------------------------------------------------------------------


def _save_checkpoint(path: Path, identity: str, model: Any, optimizer: Any, losses: list[float]) -> None:
    """Write to a side file, flush it to disk, then rename: a kill at any moment leaves the last checkpoint whole."""
    import torch
    from peft import get_peft_model_state_dict

    state = {
        "identity": identity,
        "adapter": {k: v.detach().cpu() for k, v in get_peft_model_state_dict(model).items()},
        "optimizer": optimizer.state_dict(),
        "losses": list(losses),
        "torch_rng": torch.get_rng_state(),
    }
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, path)


def _load_checkpoint(path: Path, identity: str, model: Any, optimizer: Any) -> dict[str, Any] | None:
    """Restore a checkpoint of this very run; one of other data or arguments (or a damaged one) is set aside."""
    import torch
    from peft import set_peft_model_state_dict

    path.with_name(path.name + ".partial").unlink(missing_ok=True)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("identity") != identity:
            raise ValueError("another run's checkpoint")
        set_peft_model_state_dict(model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    except Exception:
        path.unlink(missing_ok=True)  # it cannot be resumed: start over rather than fail the night's run
        return None
    return dict(state)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM finish the current step and checkpoint it; a second SIGINT stops at once.

    Signal handlers belong to the main thread: elsewhere (a TUI worker) the caller's ``stop`` event does this.
    """
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.set()

    saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)
