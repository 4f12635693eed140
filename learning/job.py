"""The learning run, start to end: what `assistant learn`, the nightly schedule and the TUI's "learn now" call.

Order: lock; close runs a dead job left "running"; tidy what it left on disk; select since the last completed run;
nothing new -> a "nothing" run; unlearn (forgotten items out of the replay buffer, adapters that held them off and
deleted); redact; replay; build examples; load the base model; self-distil the general answers; train; export the
GGUF adapter; verify it against peft (a failed verification refuses it); evaluate base, current and candidate;
register it and promote it or refuse it; append the selection to the replay buffer; finish the run with its report.

Crash safety: a run's files go to a new folder (``adapters/run-<id>``) that nothing points at until the adapter is
registered, and the adapter only serves after one write (``set_active``), so a kill at any point leaves the active
adapter as it was. Every database write is its own transaction; the run's row stays "running" and the next run
marks it failed and removes its leftovers. Training checkpoints live in ``adapters/training``, so a killed run's
successor on the same data resumes where it stopped.

Training runs in this process: the job is a process of its own already (the CLI, the timer's), the peft model is
needed afterwards for verification and evaluation, and peak RSS on the bundled model stays well under the 4 GiB
target (see ``bench/personal.py``).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import AssistantError
from learning.evaluate import Gate, decide, evaluate, search_strength
from learning.examples import Examples, build_examples
from learning.lock import run_lock
from learning.redact import redact_selection
from learning.replay import append_replay, load_replay
from learning.select import Selection, select
from learning.strength import scale_saved
from learning.train import Progress, TrainArgs
from learning.unlearn import TRAINING_DIR, Unlearned, run_dir, tidy, unlearn
from storage.learning import finish_run, last_successful_run, mark_interrupted, start_run
from storage.paths import adapters_dir, data_dir, ensure_private_dir, make_private

if TYPE_CHECKING:
    from assistant.config import Settings
    from storage.db import Store

ADAPTER_FILE = "adapter.gguf"
PEFT_DIR = "peft"


MLP = ("gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True, slots=True)
class Mix:
    """What a run trains on besides the user's own items. Measured on a made-up user (8 facts said in passing, 13
    held-out probes, 32 controls; MLP-only LoRA r16, lr 7e-4, 2 epochs): 64 of the shipped general examples as
    written gave probes 0.92, controls +3 points, perplexity -7 %; the same 64 answered by the base model itself
    (self-distilled) gave probes 0.85, controls -3 points, perplexity +14 % (greedy answers are the model's mode:
    training on them sharpens it, and real text gets less likely); none gave probes 0.77 and controls 0.09."""

    general: int = 64  # general instruction examples mixed in against forgetting
    self_distil: bool = False  # answer them with the base model's own greedy answers instead (measured worse)
    per_question: int = 2  # answer phrasings trained per synthesised question
    samples: int = 3  # examples shown by the dry run


def default_args() -> TrainArgs:
    """The job's training recipe. LoRA on the MLP layers only: on the same user, all seven linear layers at lr
    5e-4 lost 6 control points and rose +14 % in perplexity for probes 0.69; the MLP layers at lr 7e-4 kept both
    (see :class:`Mix`). Facts are stored in the MLPs; the attention layers' updates mostly shifted style.

    Rank 8 rather than 16: llama.cpp decodes 0.93 as fast with it as without (r16: 0.82-0.87; each adapted
    matrix costs two small matmuls a token), and at lr 1e-3 it learns as much. On three made-up users
    (``bench/personal.py``) r8 at lr 1e-3 gave probes 1.00 / 1.00 / 0.80, controls within 3 points of the base
    model or better, perplexity -4 to -7 %; two of the three adapters were kept at 75 % strength by the gate
    (``learning.strength``). r16 at lr 7e-4: probes 0.92 / 1.00 / 0.87 but one user's controls -16 points; r8 at
    7e-4: one user's probes 0.73."""
    return TrainArgs(target_modules=MLP, learning_rate=1e-3, epochs=2, rank=8, alpha=32.0, max_seq_len=256)


@dataclass
class RunReport:
    """What a run did, for the CLI, the TUI and ``learning_runs.report``."""

    status: str  # "dry", "nothing", "promoted", "refused", "failed"
    message: str  # one sentence for the user
    run_id: int | None = None
    adapter_version: int | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    redaction: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    unlearned: dict[str, Any] = field(default_factory=dict)
    tidied: list[str] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    decision: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


Step = Callable[[str], None]


def run(
    home: Path | None = None,
    *,
    dry_run: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    on_step: Step | None = None,
    args: TrainArgs | None = None,
    gate: Gate | None = None,
    mix: Mix | None = None,
    settings: Settings | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """One learning run (see the module's docstring); raises an ``AssistantError`` (one sentence) when it fails."""
    from assistant.app_store import open_store
    from assistant.config import load_settings

    home = home or data_dir()
    settings = settings or load_settings(home)
    args = args or default_args()
    args.validate()
    say = on_step or (lambda _: None)
    if dry_run:
        with open_store(home) as store:
            return _dry(store, home, settings, args, mix or Mix())
    with run_lock(home), open_store(home) as store:
        mark_interrupted(store)
        job = _Job(store, home, settings, args, gate or Gate(), mix or Mix(), say, on_progress, stop)
        return job.run()


def _since(store: Store) -> Any:
    last = last_successful_run(store)
    return last.watermarks if last else None


def _examples(store: Store, home: Path, selection: Selection, settings: Settings, args: TrainArgs, mix: Mix) -> Any:
    redacted, redaction = redact_selection(selection)
    replay = load_replay(store, home)
    examples = build_examples(
        redacted,
        replay,
        seed=args.seed,
        system_prompt=settings.system_prompt,
        per_question=mix.per_question,
        general=mix.general,
    )
    return redacted, redaction, replay, examples


def _personal(examples: Examples) -> int:
    return sum(e.origin != "general" for e in examples.train)


def _samples(examples: Examples, count: int) -> list[dict[str, Any]]:
    mine = [e for e in examples.train if e.origin != "general"][:count]
    return [{"user": e.messages[1]["content"], "assistant": e.messages[2]["content"], "origin": e.origin} for e in mine]


def _dry(store: Store, home: Path, settings: Settings, args: TrainArgs, mix: Mix) -> RunReport:
    """What a run would learn, changing nothing: no run recorded, no watermark moved, no file written."""
    selection = select(store, _since(store), settings)
    report = RunReport("dry", "", selection=selection.counts())
    if selection.empty:
        report.message = "Nothing new to learn since the last run."
        return report
    _, redaction, replay, examples = _examples(store, home, selection, settings, args, mix)
    report.redaction = redaction.to_dict()
    report.examples = {**examples.counts(), "replay_items": len(replay), "personal": _personal(examples)}
    report.samples = _samples(examples, mix.samples)
    report.message = (
        f"A run would train on {_personal(examples)} examples about you and {examples.counts().get('general', 0)} "
        f"general ones, and check {len(examples.probes)} held-out questions; nothing was changed."
    )
    return report


class _Job:
    def __init__(
        self,
        store: Store,
        home: Path,
        settings: Settings,
        args: TrainArgs,
        gate: Gate,
        mix: Mix,
        say: Step,
        on_progress: Callable[[Progress], None] | None,
        stop: threading.Event | None,
    ) -> None:
        self.store, self.home, self.settings, self.args = store, home, settings, args
        self.gate, self.mix, self.say, self.on_progress, self.stop = gate, mix, say, on_progress, stop
        self.report = RunReport("running", "")
        self._clock = self._started = time.perf_counter()

    def _timed(self, name: str) -> None:
        now = time.perf_counter()
        self.report.timings[name] = round(now - self._clock, 2)
        self._clock = now

    def run(self) -> RunReport:
        report, store = self.report, self.store
        report.tidied = tidy(store, self.home)
        selection = select(store, _since(store), self.settings)
        report.selection = selection.counts()
        report.run_id = start_run(store)
        try:
            return self._run(selection)
        except BaseException as exc:  # a stop, a kill signal turned exception, or an error: the run failed
            report.status = "failed"
            report.message = str(exc) if isinstance(exc, AssistantError) else f"The run stopped: {type(exc).__name__}."
            try:
                finish_run(store, report.run_id, "failed", report={"error": report.message, **_short(report)})
            except AssistantError:
                pass  # the next run marks it failed anyway
            raise

    def _finish(self, status: str, message: str, selection: Selection) -> RunReport:
        report = self.report
        report.status, report.message = status, message
        report.timings["total"] = round(time.perf_counter() - self._started, 2)
        finish_run(
            self.store, report.run_id or 0, status, selection.watermarks, report.adapter_version,  # type: ignore[arg-type]
            _short(report),
        )  # fmt: skip
        return report

    def _run(self, selection: Selection) -> RunReport:
        report, store, home, say = self.report, self.store, self.home, self.say
        if selection.empty:
            return self._finish("nothing", "Nothing new to learn since the last run.", selection)
        say("unlearning")
        done: Unlearned = unlearn(store, home, selection.forgotten)
        report.unlearned = done.to_dict()
        say("building examples")
        redacted, redaction, replay, examples = _examples(store, home, selection, self.settings, self.args, self.mix)
        report.redaction = redaction.to_dict()
        report.examples = {**examples.counts(), "replay_items": len(replay), "personal": _personal(examples)}
        report.samples = _samples(examples, self.mix.samples)
        self._timed("select")
        if not _personal(examples):
            append_replay(redacted, report.run_id, home)
            tail = f" {done.sentence()}" if done.removed else ""
            return self._finish("nothing", f"Nothing to learn about you in what is new.{tail}", selection)
        return self._train(selection, redacted, examples, done)

    def _train(self, selection: Selection, redacted: Selection, examples: Examples, done: Unlearned) -> RunReport:
        from assistant.adapters import adapter_file, base_model_of
        from assistant.config import models_dir
        from assistant.models import resolve
        from learning.base_model import load_base
        from learning.distil import distil_general
        from learning.export import export_gguf
        from learning.train import train
        from learning.verify import verify_adapter
        from storage.adapters import active_adapter, add_adapter, set_active, set_adapter_state

        report, store, home, say = self.report, self.store, self.home, self.say
        spec = resolve(store, self.settings.model, models_dir(home))
        assert spec.path is not None
        base_id = base_model_of(spec.name, spec.path)
        say("loading the base model")
        base = load_base(spec.path)
        import torch

        from learning.train import default_threads

        # Generation and evaluation run at the training's thread count too (spin-waiting threads on a busy
        # machine made one short generation take 20 s on 2 threads against under 1 s on 1).
        torch.set_num_threads(self.args.threads or default_threads())
        self._timed("load")
        if self.mix.self_distil:
            say("the base model's own general answers")
            examples = distil_general(examples, base, self.settings.system_prompt)
            self._timed("distil")
        folder = ensure_private_dir(run_dir(home, report.run_id or 0))
        say("training")
        result = train(
            [e.messages for e in examples.train], base, adapters_dir(home) / TRAINING_DIR, self.args,
            self.on_progress, stop=self.stop,
        )  # fmt: skip
        shutil.rmtree(folder / PEFT_DIR, ignore_errors=True)
        shutil.move(str(result.adapter_dir), folder / PEFT_DIR)
        shutil.rmtree(adapters_dir(home) / TRAINING_DIR, ignore_errors=True)
        report.losses = [round(x, 4) for x in result.losses]
        report.training = {
            "steps": result.steps, "examples": result.examples, "dropped": result.dropped, "tokens": result.tokens,
            "tokens_per_s": round(result.tokens_per_s, 1), "seconds": round(result.elapsed_s, 1),
            "peak_rss_mb": round(result.peak_rss_mb), "device": result.device, "resumed_from": result.resumed_from,
            "args": self.args.identity(),
        }  # fmt: skip
        self._timed("train")
        say("exporting")
        gguf = folder / ADAPTER_FILE
        info = export_gguf(folder / PEFT_DIR, spec.path, gguf, extra={"assistant.base_model": base_id})
        report.export = {"path": str(gguf), "bytes": info.bytes, "dtype": info.dtype, "tensors": info.tensors}
        say("verifying")
        verification = verify_adapter(result.model, base, gguf, threads=self.settings.effective_threads())
        report.verification = verification.to_dict()
        self._timed("export_verify")
        current = active_adapter(store, base_id)
        current_peft = adapter_file(current, home).parent / PEFT_DIR if current else None
        say("evaluating")
        evaluation = evaluate(
            result.model, base.tokenizer, base.folder.name, examples.probes, examples.controls,
            self.settings.system_prompt,
            current=current_peft if current_peft and current_peft.is_dir() else None,
            current_version=current.version if current and current_peft and current_peft.is_dir() else None,
            on_step=lambda what: say(f"evaluating: {what}"),
        )  # fmt: skip
        evaluation = search_strength(
            result.model, base.tokenizer, evaluation, examples.probes, examples.controls, self.settings.system_prompt,
            self.gate, on_step=lambda what: say(f"evaluating: {what}"),
        )  # fmt: skip
        if evaluation.strength < 1.0:
            # The verified export differs from this one in its alpha only (llama.cpp scales by alpha / rank).
            scale_saved(folder / PEFT_DIR, evaluation.strength)
            export_gguf(folder / PEFT_DIR, spec.path, gguf, extra={"assistant.base_model": base_id})
            report.export["strength"] = evaluation.strength
        report.evaluation = evaluation.to_dict()
        decision = decide(evaluation, self.gate)
        if not verification.passed:
            decision.promote = False
            decision.reasons.insert(
                0, "The exported adapter does not match the trained one: " + "; ".join(verification.reasons) + "."
            )
        report.decision = decision.to_dict()
        self._timed("evaluate")
        metrics = {
            **{f"candidate_{k}": v for k, v in evaluation.candidate.summary().items()},
            **{f"base_{k}": v for k, v in evaluation.base.summary().items()},
            "final_loss": report.losses[-1] if report.losses else None,
            "steps": result.steps,
            "strength": evaluation.strength,
        }
        relative = f"{folder.name}/{ADAPTER_FILE}"
        version = add_adapter(store, base_id, relative, examples.sources(), metrics, report.run_id)
        report.adapter_version = version
        kept = f"adapter v{current.version}" if current else "the base model"
        if decision.promote:
            status, message = "promoted", f"Adapter v{version} is now active: {' '.join(decision.passed)}"
        else:
            status = "refused"
            message = f"Adapter v{version} was not promoted, so {kept} stays: {' '.join(decision.reasons)}"
        if done.removed:
            message += f" {done.sentence()}"
        report.status, report.message = status, message
        report.files = _write_files(folder, report)
        if decision.promote:
            set_active(store, version)  # the one write that makes it serve
        else:
            set_adapter_state(store, version, "refused")
        append_replay(redacted, report.run_id, home)
        self._timed("register")
        return self._finish(status, message, selection)


def _short(report: RunReport) -> dict[str, Any]:
    """The report kept in ``learning_runs.report``: everything but the evaluation's answers (report.json has them)."""
    data = report.to_dict()
    data["evaluation"] = {
        name: {k: v for k, v in scores.items() if k not in ("probes", "control_answers")}
        if isinstance(scores, dict)
        else scores
        for name, scores in (data.get("evaluation") or {}).items()
    }
    return data


def _write_files(folder: Path, report: RunReport) -> dict[str, str]:
    """report.json (everything, answers included) and loss.png in the run's folder."""
    from learning.report import loss_png

    files = {"report": str(folder / "report.json"), "plot": str(folder / "loss.png")}
    data = {**report.to_dict(), "files": files}
    path = folder / "report.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    make_private(path)
    loss_png(report.losses, folder / "loss.png")
    make_private(folder / "loss.png")
    return files
