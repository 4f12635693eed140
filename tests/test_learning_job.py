"""The learning job's orchestration (``learning.job``): the order of its steps, nothing new, the dry run, the gate,
crashes at several points, unlearning and the lock, and the `assistant learn` command's plumbing.

Real SQLite, real selection, redaction, examples and replay buffer; the model-heavy steps (load, distil, train,
export, verify, evaluate) are small fakes here, since each takes seconds to minutes on the real model: the real
ones run end to end in tests/test_learning_e2e.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assistant.adapters import adapter_for, base_model_of
from assistant.models import resolve
from learning import job
from learning.evaluate import Answer, Evaluation, Gate, Scores, decide
from learning.lock import RunInProgress, run_lock
from learning.report import loss_png, sparkline, terminal_plot
from learning.train import Progress, TrainArgs, TrainResult
from learning.unlearn import TRAINING_DIR
from learning.verify import Verification
from storage import learning as records
from storage.adapters import active_adapter, adapter_items, get_adapter, list_adapters
from storage.db import Store, open_store
from storage.paths import adapters_dir
from tests.test_cli_chat import ROOT, run_cli

ARGS = TrainArgs(iters=4, batch_size=4)
FACTS = [
    "I walked my dog Biscuit this morning. Can you suggest a podcast?",
    "I live in Tromsø, so the winters are long. What should I read?",
    "My sister Priya is visiting next week. Any recipe ideas?",
]


@pytest.fixture(autouse=True)
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "FEEDBACK_SETTLE_S", 0.0)


def talk(store: Store, *user_messages: str) -> list[int]:
    conversation = store.create_conversation()
    ids = []
    for text in user_messages:
        ids.append(store.add_message(conversation, "user", text))
        store.add_message(conversation, "assistant", "Sure, here is an idea.")
    return ids


def scores(personal: float | None, controls: float = 0.9, ppl: float = 10.0) -> Scores:
    return Scores(personal, controls, ppl, [Answer("q", "a", True)], [Answer("c", "a", True)])


@dataclass
class Fakes:
    """Stand-ins for the model-heavy steps; ``calls`` records their order."""

    calls: list[str] = field(default_factory=list)
    candidate: Scores = field(default_factory=lambda: scores(0.9))
    base: Scores = field(default_factory=lambda: scores(0.0))
    verified: bool = True
    fail_at: str | None = None  # a step that raises
    current_seen: list[Path | None] = field(default_factory=list)
    trained_on: list[list[Any]] = field(default_factory=list)
    weaker: dict[float, Scores] = field(default_factory=dict)  # the candidate's scores at part strength
    strength: float = 1.0

    def step(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_at == name:
            raise RuntimeError(f"killed at {name}")

    def load_base(self, gguf: Path, **_: Any) -> Any:
        self.step("load")
        return type("Base", (), {"folder": Path("fake-base"), "tokenizer": None, "gguf_path": gguf})()

    def distil(self, examples: Any, base: Any, system: str, prose: int = 0) -> Any:
        self.step("distil")
        return examples

    def train(self, examples: Any, base: Any, out_dir: Path, args: TrainArgs, on_progress: Any = None, **_: Any) -> Any:
        self.step("train")
        self.trained_on.append(list(examples))
        out_dir.mkdir(parents=True, exist_ok=True)
        steps = args.iters
        for n in range(1, steps + 1):
            if on_progress:
                on_progress(Progress(n, steps, n / steps, 2.0 / n, 1e-3, 100, 50.0, 1.0, 500.0))
        adapter = out_dir / "adapter"
        adapter.mkdir(exist_ok=True)
        (adapter / "adapter_model.safetensors").write_bytes(b"weights")
        (adapter / "adapter_config.json").write_text(json.dumps({"r": 16, "lora_alpha": 32.0}))
        losses = [2.0 / n for n in range(1, steps + 1)]
        return TrainResult(adapter, object(), losses, steps, 400, 50.0, 8.0, 500.0, "cpu", None, len(examples), 0)

    def export(self, adapter_dir: Path, base_gguf: Path, out: Path, **_: Any) -> Any:
        alpha = json.loads((adapter_dir / "adapter_config.json").read_text())["lora_alpha"]
        self.step("export" if alpha == 32.0 else f"export alpha {alpha:g}")
        assert (adapter_dir / "adapter_model.safetensors").exists()
        out.write_bytes(b"GGUF fake adapter")
        return type("Info", (), {"bytes": 17, "dtype": "f16", "tensors": 2})()

    def verify(self, model: Any, base: Any, gguf: Path, **_: Any) -> Verification:
        self.step("verify")
        return Verification(self.verified, 0.99, 0.0, 1.0, 0.0, 1.0, 10, [] if self.verified else ["cosine 0.5"])

    def evaluate(self, model: Any, tokenizer: Any, folder: str, probes: Any, controls: Any, system: str, **kw: Any):
        self.step("evaluate")
        self.current_seen.append(kw.get("current"))
        current = scores(0.5) if kw.get("current") is not None else None
        return Evaluation(self.base, self.candidate, current, kw.get("current_version"))

    @contextmanager
    def scaled(self, model: Any, factor: float) -> Iterator[None]:
        self.step(f"strength {factor:g}")
        self.strength = factor
        try:
            yield
        finally:
            self.strength = 1.0

    def score(self, *_: Any, **__: Any) -> Scores:
        return self.weaker.get(self.strength, self.candidate)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Fakes:
    f = Fakes()
    import learning.base_model
    import learning.distil
    import learning.evaluate
    import learning.export
    import learning.train
    import learning.verify

    monkeypatch.setattr(learning.base_model, "load_base", f.load_base)
    monkeypatch.setattr(learning.distil, "distil_general", f.distil)
    monkeypatch.setattr(learning.train, "train", f.train)
    monkeypatch.setattr(learning.export, "export_gguf", f.export)
    monkeypatch.setattr(learning.verify, "verify_adapter", f.verify)
    monkeypatch.setattr(job, "evaluate", f.evaluate)
    monkeypatch.setattr(learning.evaluate, "scaled", f.scaled)
    monkeypatch.setattr(learning.evaluate, "score", f.score)
    return f


def base_id(store: Store, home: Path) -> str:
    spec = resolve(store, "smollm2", home / "models")
    assert spec.path is not None
    return base_model_of("smollm2", spec.path)


def db_dump(home: Path) -> list[tuple[Any, ...]]:
    """Everything a crash must leave alone: conversations, messages, facts, feedback and adapters."""
    with open_store(home) as store, store.guard() as db:
        rows: list[tuple[Any, ...]] = []
        for table in ("conversations", "messages", "facts", "feedback", "adapters", "adapter_items"):
            rows += [(table, *r) for r in db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()]
        return rows


# -- the order of steps, and what a run leaves --------------------------------------------------------------------


def test_a_run_goes_in_order_and_promotes_a_better_adapter(home: Path, store: Store, fakes: Fakes) -> None:
    ids = talk(store, *FACTS)
    steps: list[str] = []
    progress: list[int] = []
    report = job.run(home, args=ARGS, on_step=steps.append, on_progress=lambda p: progress.append(p.step))
    assert fakes.calls == ["load", "train", "export", "verify", "evaluate"]
    assert steps[:3] == ["unlearning", "building examples", "loading the base model"]
    assert progress == [1, 2, 3, 4]
    assert report.status == "promoted" and report.adapter_version is not None
    adapter = get_adapter(store, report.adapter_version)
    assert adapter.state == "active" and adapter.run_id == report.run_id
    assert adapter.path == f"run-{report.run_id}/adapter.gguf"
    # What it was trained on is recorded, so forgetting one of those messages finds it.
    assert {("message", i) for i in ids} <= set(adapter_items(store, adapter.version))
    assert adapter.metrics["candidate_personal"] == 0.9
    run = records.get_run(store, report.run_id or 0)
    assert run.status == "promoted" and run.adapter_version == adapter.version
    assert run.watermarks.message == max(ids) + 1  # the last reply's id
    assert run.report["message"].startswith(f"Adapter v{adapter.version} is now active")
    folder = adapters_dir(home) / f"run-{report.run_id}"
    saved = json.loads((folder / "report.json").read_text())
    assert saved["status"] == "promoted" and saved["losses"] == [2.0, 1.0, 0.6667, 0.5]
    assert (folder / "loss.png").read_bytes().startswith(b"\x89PNG")
    assert (folder / "peft" / "adapter_model.safetensors").exists()
    assert oct((folder / "report.json").stat().st_mode & 0o777) == "0o600"
    assert not (adapters_dir(home) / TRAINING_DIR).exists()
    # The replay buffer keeps the items for the next run.
    assert (adapters_dir(home) / "replay.jsonl").read_text().count("Biscuit") == 1


def test_nothing_new_is_a_completed_run_that_changes_nothing_else(home: Path, store: Store, fakes: Fakes) -> None:
    report = job.run(home, args=ARGS)
    assert report.status == "nothing" and report.message == "Nothing new to learn since the last run."
    assert fakes.calls == [] and list_adapters(store) == []
    assert records.last_successful_run(store).status == "nothing"  # type: ignore[union-attr]
    talk(store, *FACTS)
    job.run(home, args=ARGS)
    fakes.calls.clear()
    again = job.run(home, args=ARGS)  # the same data again: nothing new
    assert again.status == "nothing" and fakes.calls == []


def test_chit_chat_without_anything_about_the_user_trains_nothing(home: Path, store: Store, fakes: Fakes) -> None:
    talk(store, "I had a long day at the office. Can you suggest a podcast?", "I feel tired today.")
    report = job.run(home, args=ARGS)
    assert report.status == "nothing" and "Nothing to learn about you" in report.message
    assert fakes.calls == []


def test_the_dry_run_shows_what_would_be_learned_and_changes_nothing(home: Path, store: Store, fakes: Fakes) -> None:
    talk(store, *FACTS, "My email is maren@example.com and I live in Tromsø.")
    before = db_dump(home)
    with store.guard() as db:
        runs_before = db.execute("SELECT count(*) FROM learning_runs").fetchone()[0]
    report = job.run(home, dry_run=True, args=ARGS)
    assert report.status == "dry" and "nothing was changed" in report.message
    assert report.selection["statements"] >= 3 and report.examples["personal"] > 0 and report.samples
    assert report.redaction["replaced"] == {"email": 1}
    assert "[email]" in report.redaction["samples"][0]
    assert fakes.calls == []
    assert db_dump(home) == before
    with store.guard() as db:
        assert db.execute("SELECT count(*) FROM learning_runs").fetchone()[0] == runs_before
    assert not adapters_dir(home).exists() or not any(adapters_dir(home).iterdir())
    # A real run afterwards still sees everything as new.
    assert job.run(home, args=ARGS).status == "promoted"


# -- the gate -----------------------------------------------------------------------------------------------------


def test_a_refused_adapter_keeps_the_current_one_and_says_why(home: Path, store: Store, fakes: Fakes) -> None:
    talk(store, FACTS[0])
    first = job.run(home, args=ARGS)
    assert first.status == "promoted"
    talk(store, FACTS[1])
    fakes.candidate = scores(0.9, controls=0.5, ppl=12.0)  # better about the user, worse in general
    second = job.run(home, args=ARGS)
    assert second.status == "refused"
    assert fakes.current_seen[-1] == adapters_dir(home) / f"run-{first.run_id}" / "peft"
    assert active_adapter(store, base_id(store, home)).version == first.adapter_version  # type: ignore[union-attr]
    assert get_adapter(store, second.adapter_version or 0).state == "refused"
    reasons = second.decision["reasons"]
    assert len(reasons) == 3 and "control" in reasons[0] and "perplexity" in reasons[1]
    assert reasons[2] == "Weaker versions of it (75%, 50% strength) did not pass either."
    assert fakes.calls[-2:] == ["strength 0.75", "strength 0.5"]
    assert [t["strength"] for t in second.evaluation["tried"]] == [1.0, 0.75, 0.5]
    assert f"so adapter v{first.adapter_version} stays" in second.message
    # A refused run completed: its items are not selected again, but stay in the replay buffer.
    assert records.last_successful_run(store).id == second.run_id  # type: ignore[union-attr]
    assert "Tromsø" in (adapters_dir(home) / "replay.jsonl").read_text()


def test_a_weaker_version_that_keeps_general_answers_is_promoted_at_that_strength(
    home: Path, store: Store, fakes: Fakes
) -> None:
    talk(store, FACTS[0])
    fakes.candidate = scores(0.9, controls=0.7)  # knows the user, loses 20 points of general answers
    fakes.weaker = {0.75: scores(0.8, controls=0.88)}
    report = job.run(home, args=ARGS)
    assert report.status == "promoted"
    assert fakes.calls[-3:] == ["evaluate", "strength 0.75", "export alpha 24"]  # re-exported weaker
    assert report.evaluation["strength"] == 0.75 and report.export["strength"] == 0.75
    assert [(t["strength"], t["passed"]) for t in report.evaluation["tried"]] == [(1.0, False), (0.75, True)]
    assert "applied at 75% strength: at full strength it got 70% of the general questions" in report.message
    peft = adapters_dir(home) / f"run-{report.run_id}" / "peft" / "adapter_config.json"
    assert json.loads(peft.read_text())["lora_alpha"] == 24.0  # the next run's "current" is the weaker one
    adapter = active_adapter(store, base_id(store, home))
    assert adapter is not None and adapter.metrics["strength"] == 0.75
    assert adapter.metrics["candidate_controls"] == 0.88


def test_a_weaker_version_that_forgets_the_user_is_not_tried_further(home: Path, store: Store, fakes: Fakes) -> None:
    talk(store, FACTS[0])
    fakes.candidate = scores(0.9, controls=0.7)
    fakes.weaker = {0.75: scores(0.0, controls=0.9)}
    report = job.run(home, args=ARGS)
    assert report.status == "refused"
    assert "strength 0.5" not in fakes.calls
    assert report.decision["reasons"][-1] == "Weaker versions of it (75% strength) did not pass either."


def test_a_failed_verification_refuses_the_adapter(home: Path, store: Store, fakes: Fakes) -> None:
    talk(store, FACTS[0])
    fakes.verified = False
    report = job.run(home, args=ARGS)
    assert report.status == "refused"
    assert report.decision["reasons"][0].startswith("The exported adapter does not match the trained one")
    assert active_adapter(store, base_id(store, home)) is None


def test_the_gate_rules_one_sentence_each() -> None:
    evaluation = Evaluation(scores(0.1, 0.9, 10.0), scores(0.8, 0.86, 10.4), None)
    assert decide(evaluation).promote  # 4 points down and +4 % are within the tolerance
    refused = decide(evaluation, Gate(min_gain=1.0))
    assert not refused.promote and refused.reasons == [
        "It answers 80% of the held-out questions about you, no better than the base model (10%) by more than 100%."
    ]
    worse = decide(Evaluation(scores(0.1), scores(0.6), scores(0.7), current_version=3))
    assert not worse.promote and "no better than adapter v3 (70%)" in worse.reasons[0]
    none = decide(Evaluation(scores(None), scores(None), None))
    assert not none.promote and "no held-out questions" in none.reasons[0]


# -- crashes ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["load", "train", "export", "verify", "evaluate", "progress"])
def test_a_run_that_dies_leaves_the_database_and_the_active_adapter_and_the_next_run_succeeds(
    home: Path, store: Store, fakes: Fakes, point: str
) -> None:
    talk(store, FACTS[0])
    first = job.run(home, args=ARGS)
    active = get_adapter(store, first.adapter_version or 0)
    active_file = adapters_dir(home) / active.path
    active_bytes = active_file.read_bytes()
    talk(store, FACTS[1])
    before = db_dump(home)

    def stop_at_step_two(p: Progress) -> None:
        if p.step == 2:
            raise KeyboardInterrupt  # what Ctrl-C in the progress bar's thread looks like

    fakes.fail_at = None if point == "progress" else point
    with pytest.raises((RuntimeError, KeyboardInterrupt)):
        job.run(home, args=ARGS, on_progress=stop_at_step_two if point == "progress" else None)
    assert db_dump(home) == before
    assert active_file.read_bytes() == active_bytes
    assert adapter_for(store, "smollm2", resolve(store, "smollm2", home / "models").path, home).version == (  # type: ignore[arg-type]
        f"v{active.version}"
    )
    failed = records.list_runs(store)[0]
    assert failed.status == "failed" and failed.report["error"]

    fakes.fail_at = None
    fakes.calls.clear()
    again = job.run(home, args=ARGS)
    assert again.status == "promoted"
    assert [r.status for r in records.list_runs(store)] == ["promoted", "failed", "promoted"]
    # The failed run's folder is gone; the live ones remain.
    folders = sorted(p.name for p in adapters_dir(home).iterdir() if p.is_dir())
    assert folders == [f"run-{first.run_id}", f"run-{again.run_id}"]


def test_a_killed_process_is_marked_failed_and_its_leftovers_removed(home: Path, store: Store, fakes: Fakes) -> None:
    """SIGKILL mid-training: no except clause runs, the lock dies with the process, the next run cleans up."""
    talk(store, *FACTS)
    marker = home.parent / "training-started"
    script = f"""
import sys, os, time
sys.path.insert(0, {str(ROOT)!r})
import learning.train, learning.base_model, learning.distil
from storage import learning as records
records.FEEDBACK_SETTLE_S = 0.0
def train(examples, base, out_dir, args, on_progress=None, **_):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "checkpoint.pt").write_bytes(b"half")
    open({str(marker)!r}, "w").close()
    while True:
        time.sleep(1)
learning.train.train = train
learning.base_model.load_base = lambda gguf, **_: type("B", (), {{"folder": None, "tokenizer": None}})()
learning.distil.distil_general = lambda e, *_: e
from learning import job
from learning.train import TrainArgs
job.run(args=TrainArgs(iters=4, batch_size=4))
"""
    env = {k: v for k, v in os.environ.items()}
    child = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT)
    try:
        while not marker.exists():
            assert child.poll() is None, "the job ended before training"
            threading.Event().wait(0.05)
        with pytest.raises(RunInProgress):  # the lock is held while it runs
            with run_lock(home):
                pass
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert [r.status for r in records.list_runs(store)] == ["running"]
    assert list(adapters_dir(home).glob("run-*"))  # the half-made folder

    report = job.run(home, args=ARGS)
    assert report.status == "promoted"
    runs = records.list_runs(store)
    assert [r.status for r in runs] == ["promoted", "failed"]
    assert runs[1].report["error"] == "The run was interrupted before it finished."
    assert [p.name for p in adapters_dir(home).glob("run-*")] == [f"run-{report.run_id}"]


def test_a_second_run_is_refused_while_one_holds_the_lock(home: Path, store: Store, fakes: Fakes) -> None:
    talk(store, FACTS[0])
    with run_lock(home):
        with pytest.raises(RunInProgress, match="already in progress"):
            job.run(home, args=ARGS)
    assert records.list_runs(store) == [] and fakes.calls == []
    assert job.run(home, args=ARGS).status == "promoted"


# -- unlearning ---------------------------------------------------------------------------------------------------


def test_forgetting_turns_off_and_deletes_the_adapters_that_held_it_and_retrains_without_it(
    home: Path, store: Store, fakes: Fakes
) -> None:
    dog, town, sister = talk(store, *FACTS)
    first = job.run(home, args=ARGS)  # all three
    v1 = first.adapter_version or 0
    folder = adapters_dir(home) / f"run-{first.run_id}"
    store.delete_message(dog)
    second = job.run(home, args=ARGS)
    assert second.unlearned["removed"] == [v1] and second.unlearned["active_removed"]
    assert get_adapter(store, v1).state == "removed" and not folder.exists()
    assert "Deleted adapter(s) v1" in second.message
    # The new adapter was trained on the replay buffer without the forgotten statement.
    trained = json.dumps(fakes.trained_on[-1], ensure_ascii=False)
    assert "Biscuit" not in trained and "Tromsø" in trained and "Priya" in trained
    assert second.status == "promoted"
    assert ("message", dog) not in adapter_items(store, second.adapter_version or 0)
    assert "Biscuit" not in (adapters_dir(home) / "replay.jsonl").read_text()


def test_forgetting_falls_back_to_an_older_clean_adapter(home: Path, store: Store, fakes: Fakes) -> None:
    talk(store, FACTS[1])
    v1 = job.run(home, args=ARGS).adapter_version
    (dog,) = talk(store, FACTS[0])[:1]
    v2 = job.run(home, args=ARGS).adapter_version
    assert active_adapter(store, base_id(store, home)).version == v2  # type: ignore[union-attr]
    store.delete_message(dog)
    fakes.candidate = scores(0.9, controls=0.1)  # the retrained one is refused: the older one keeps serving
    third = job.run(home, args=ARGS)
    assert third.status == "refused"
    assert third.unlearned["removed"] == [v2] and third.unlearned["now_active"] == v1
    assert active_adapter(store, base_id(store, home)).version == v1  # type: ignore[union-attr]


# -- the report and the command -----------------------------------------------------------------------------------


def test_the_loss_plots(tmp_path: Path) -> None:
    losses = [3.0, 2.0, 1.5, 1.0, 0.8, 0.5]
    line = sparkline(losses)
    assert len(line) == 6 and line[0] == "█" and line[-1] == "▁"
    assert terminal_plot(losses).startswith("loss 3.000 -> 0.500 over 6 steps")
    png = loss_png(losses, tmp_path / "loss.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IDAT" in png and png.endswith(b"IEND\xaeB`\x82")
    import zlib

    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    data = png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8]
    raw = zlib.decompress(data)
    assert len(raw) == height * (1 + width * 3)
    assert b"\x14\x50\xaa" in raw  # the moving average's colour is drawn
    assert loss_png([], tmp_path / "empty.png").read_bytes().startswith(b"\x89PNG")


def test_learn_cli_with_nothing_new_exits_zero_and_says_so(home: Path) -> None:
    done = run_cli("learn")
    assert done.returncode == 0, done.stderr
    assert "Nothing new to learn since the last run." in done.stderr
    data = json.loads(run_cli("learn", "--json").stdout)
    assert data["status"] == "nothing" and data["run_id"] == 2


def test_learn_cli_dry_run_and_bad_arguments(home: Path, store: Store) -> None:
    talk(store, *FACTS)
    done = run_cli("learn", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "nothing was changed" in done.stderr and "e.g. Q:" in done.stderr and "statements: 3" in done.stderr
    assert json.loads(run_cli("learn", "--dry-run", "--json").stdout)["examples"]["personal"] > 0
    assert records.list_runs(store) == []
    bad = run_cli("learn", "--train", "colour=blue")
    assert bad.returncode == 2 and bad.stderr.startswith("Error: 'colour=blue' is not a training setting")
    assert run_cli("learn", "--train", "epochs=x").returncode == 2
    assert run_cli("learn", "--min-gain", "2").returncode == 2
    assert run_cli("learn", "--status", "--uninstall-schedule").returncode == 2
    assert "Traceback" not in bad.stderr


def test_learn_cli_status_lists_runs_and_the_active_adapter(home: Path, store: Store, fakes: Fakes) -> None:
    talk(store, FACTS[0])
    report = job.run(home, args=ARGS)
    status = json.loads(run_cli("learn", "--status", "--json").stdout)
    assert status["active_adapter"] == f"v{report.adapter_version}"
    assert status["runs"][0]["status"] == "promoted" and status["running"] is False
    text = run_cli("learn", "--status")
    assert f"Active adapter: v{report.adapter_version}." in text.stderr and "promoted" in text.stderr


def test_learn_cli_is_registered_by_the_launcher_only() -> None:
    source = (ROOT / "assistant" / "cli" / "__init__.py").read_text()
    assert "learning" not in source.replace("learning package", "")
    assert '"learn"' in (ROOT / "tui" / "launcher.py").read_text()
