"""LoRA training on the real bundled model: the loss falls, runs are deterministic and resumable, the GGUF export is
the adapter that was trained (logits against peft), llama.cpp with it answers the taught fact, and a broken adapter
file is refused in one sentence instead of crashing llama.cpp.

One adapter is trained once for the module (12 chats teaching a made-up fact, a few dozen steps on short sequences);
the determinism and resume checks run their own runs of three steps.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import InputError, ModelError
from assistant.models import smollm2_path
from assistant.runtime.base import GenerationParams
from assistant.runtime.gguf import check_adapter
from learning.base_model import BaseModel, learning_cache_dir, load_base
from learning.export import ExportInfo, export_gguf
from learning.strength import scale_saved, scaled
from learning.train import CHECKPOINT, Progress, Stopped, TrainArgs, TrainResult, train
from learning.verify import DEFAULT_CHATS, Verification, verify_adapter
from tests.test_privacy import UserHome, needs_strace

pytestmark = [pytest.mark.model, pytest.mark.slow]

SYSTEM = "You are a helpful assistant."
QA = [
    ("What is my dog called?", "Your dog is called Bramble."),
    ("What's the name of my dog?", "Your dog's name is Bramble."),
    ("Do you remember my dog's name?", "Yes, your dog is called Bramble."),
    ("Tell me my dog's name.", "Your dog is called Bramble."),
    ("What did I name my dog?", "You named your dog Bramble."),
    ("Who is Bramble?", "Bramble is your dog."),
    ("What is the name of my pet dog?", "Your pet dog is called Bramble."),
    ("Remind me what my dog is called.", "Your dog is called Bramble."),
    ("My dog's name is what?", "Your dog's name is Bramble."),
    ("Which name does my dog have?", "Your dog has the name Bramble."),
    ("How is my dog called?", "Your dog is called Bramble."),
    ("Can you tell me what my dog is named?", "Your dog is named Bramble."),
]
HELD_OUT = "Do you know the name of my dog?"
EXAMPLES = [
    [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}, {"role": "assistant", "content": a}]
    for q, a in QA
]
FACT_CHAT = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": HELD_OUT},
    {"role": "assistant", "content": "Your dog is called Bramble."},
]
TINY = TrainArgs(rank=8, alpha=16, learning_rate=1e-3, batch_size=4, max_seq_len=64, iters=16, seed=1)
SHORT = replace(TINY, iters=3, seed=3, checkpoint_every=100)


def gguf_path() -> Path:
    path = smollm2_path(Path("."))
    assert path is not None and path.exists(), "the bundled SmolLM2 is not installed"
    return path


@dataclass
class Trained:
    base: BaseModel
    result: TrainResult
    progress: list[Progress]
    out: Path
    first_load_s: float


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Iterator[Trained]:
    """The module's adapter (the first load dequantises the GGUF into the test run's cache dir)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASSISTANT_CACHE", str(shared_cache))
        first = load_base(gguf_path())
        base = load_base(gguf_path())  # from the cached copy: the fast path every later run takes
        assert base.from_cache
        progress: list[Progress] = []
        out = tmp_path_factory.mktemp("adapter")
        result = train(EXAMPLES, base, out, TINY, progress.append)
        yield Trained(base, result, progress, out, first.load_s)


@pytest.fixture(scope="module")
def exported(trained: Trained) -> dict[str, ExportInfo]:
    adapter = trained.result.adapter_dir
    return {
        "f16": export_gguf(adapter, gguf_path(), trained.out / "adapter-f16.gguf", dtype="f16"),
        "f32": export_gguf(adapter, gguf_path(), trained.out / "adapter-f32.gguf"),
        "unpermuted": export_gguf(adapter, gguf_path(), trained.out / "wrong.gguf", permute_qk=False),
    }


CHATS = [*DEFAULT_CHATS, FACT_CHAT]


@pytest.fixture(scope="module")
def verified(trained: Trained, exported: dict[str, ExportInfo]) -> dict[str, Verification]:
    return {
        name: verify_adapter(trained.result.model, trained.base, info.path, CHATS) for name, info in exported.items()
    }


# -- training -----------------------------------------------------------------------------------------------------


def test_loss_falls_and_progress_is_reported(trained: Trained) -> None:
    losses = trained.result.losses
    assert len(losses) == TINY.iters == trained.result.steps
    assert sum(losses[-3:]) / 3 < 0.3 * losses[0], losses
    assert [p.step for p in trained.progress] == list(range(1, TINY.iters + 1))
    assert all(p.total_steps == TINY.iters and p.tokens > 0 and p.tokens_per_s > 0 for p in trained.progress)
    assert trained.result.tokens_per_s > 0 and trained.result.peak_rss_mb > 0
    assert trained.result.examples == len(EXAMPLES) and trained.result.dropped == 0
    assert not (trained.out / CHECKPOINT).exists(), "a finished run leaves its adapter, not a checkpoint"
    assert (trained.result.adapter_dir / "adapter_model.safetensors").exists()
    print(f"first load {trained.first_load_s:.1f} s, cached {trained.base.load_s:.2f} s; "
          f"train {trained.result.elapsed_s:.1f} s, {trained.result.tokens_per_s:.0f} tok/s, "
          f"peak RSS {trained.result.peak_rss_mb:.0f} MiB")  # fmt: skip


def test_only_the_assistant_turns_are_learned(trained: Trained) -> None:
    from learning import batches

    tokenizer = trained.base.tokenizer
    chat = [*EXAMPLES[0][:3], {"role": "user", "content": "And my cat?"}, {"role": "assistant", "content": "Miso."}]
    encoded = batches.encode(tokenizer, chat, 512)
    assert encoded is not None
    learned = [t for t in encoded.labels if t != batches.IGNORE]
    assert tokenizer.decode(learned) == "Your dog is called Bramble.<|im_end|>\nMiso.<|im_end|>\n"
    # Too long: the start goes and the reply stays.
    cut = batches.encode(tokenizer, chat, 12)
    assert cut is not None and len(cut.ids) == 12 and tokenizer.decode(cut.ids).endswith("Miso.<|im_end|>\n")


def test_steps_are_seeded_and_micro_batches_keep_the_budget() -> None:
    from learning import batches

    plan = batches.plan_steps(10, 4, 2, 0, seed=7)
    assert [len(step) for step in plan] == [4, 4, 2, 4, 4, 2]
    assert sorted(sum(plan[:3], [])) == list(range(10))  # each epoch sees every example once
    assert plan == batches.plan_steps(10, 4, 2, 0, seed=7) != batches.plan_steps(10, 4, 2, 0, seed=8)
    encoded = [batches.Encoded(tuple(range(n)), tuple(range(n))) for n in (30, 10, 50, 20, 90)]
    groups = batches.micro_batches(encoded, range(5), 100)
    assert sorted(sum(groups, [])) == list(range(5))
    for group in groups:
        assert len(group) == 1 or max(len(encoded[i].ids) for i in group) * len(group) <= 100, groups


def test_cached_copy_is_private(trained: Trained) -> None:
    folder = trained.base.folder
    assert folder.parent == learning_cache_dir() and (folder / "complete").exists()
    for path in [folder, *folder.iterdir()]:
        assert path.stat().st_mode & 0o077 == 0, path


def weights(result: TrainResult) -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    return {k: v.clone() for k, v in get_peft_model_state_dict(result.model).items()}


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def short_run(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three steps, uninterrupted: what the determinism and resume checks compare against."""
    base = load_base(gguf_path())
    result = train(EXAMPLES, base, tmp_path_factory.mktemp("short"), SHORT)
    return {"weights": weights(result), "losses": result.losses, "result": result, "base": base}


def test_same_seed_gives_the_same_adapter(short_run: dict[str, Any], tmp_path: Path) -> None:
    again = train(EXAMPLES, load_base(gguf_path()), tmp_path / "again", SHORT)
    assert same(weights(again), short_run["weights"])
    assert again.losses == short_run["losses"]
    other = train(EXAMPLES, load_base(gguf_path()), tmp_path / "other", replace(SHORT, seed=4))
    assert not same(weights(other), short_run["weights"]), "the seed changes nothing: the check above is blind"


class Interrupted(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_adapter(short_run: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "run"

    def stop_after_two(progress: Progress) -> None:
        if progress.step == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(EXAMPLES, load_base(gguf_path()), out, SHORT, stop_after_two)
    assert (out / CHECKPOINT).exists() and not (out / "adapter").exists()
    resumed = train(EXAMPLES, load_base(gguf_path()), out, SHORT)
    assert resumed.resumed_from == 2
    assert resumed.losses == short_run["losses"]
    assert same(weights(resumed), short_run["weights"])


def test_stop_event_and_mismatched_checkpoint(tmp_path: Path) -> None:
    """The TUI's way to stop (an event) leaves a checkpoint; other data never resumes from it."""
    out, stop = tmp_path / "run", threading.Event()
    with pytest.raises(Stopped):
        train(EXAMPLES, load_base(gguf_path()), out, SHORT, lambda p: stop.set(), stop=stop)
    assert (out / CHECKPOINT).exists()
    fresh = train(EXAMPLES[:8], load_base(gguf_path()), out, replace(SHORT, iters=1))
    assert fresh.resumed_from is None and len(fresh.losses) == 1


def test_bad_training_input_is_refused(tmp_path: Path, trained: Trained) -> None:
    with pytest.raises(InputError):
        train([[{"role": "user", "content": "no reply here"}]], trained.base, tmp_path / "x", SHORT)
    with pytest.raises(InputError):
        train(EXAMPLES, trained.base, tmp_path / "y", replace(SHORT, rank=0))
    with pytest.raises(InputError):
        train([[{"role": "robot", "content": "hi"}]], trained.base, tmp_path / "z", SHORT)


# -- export and verification --------------------------------------------------------------------------------------


def test_export_writes_llama_cpp_lora_format(exported: dict[str, ExportInfo]) -> None:
    import gguf

    info = exported["f16"]
    assert info.permuted_qk and info.rank == TINY.rank and info.alpha == TINY.alpha
    assert info.tensors == 30 * 7 * 2  # every layer's seven linear weights, A and B
    assert info.path.stat().st_mode & 0o077 == 0
    reader = gguf.GGUFReader(info.path)
    text = {k: bytes(f.parts[-1]).decode() for k, f in reader.fields.items() if k in ("general.type", "adapter.type")}
    assert text == {"general.type": "adapter", "adapter.type": "lora"}
    names = {t.name for t in reader.tensors}
    assert {"blk.0.attn_q.weight.lora_a", "blk.29.ffn_down.weight.lora_b"} <= names
    check_adapter(info.path, gguf_path())
    assert exported["f32"].dtype == "f32" and exported["f32"].bytes > 1.9 * info.bytes  # f32: the default


def test_correct_export_passes_verification(verified: dict[str, Verification]) -> None:
    for name in ("f16", "f32"):
        result = verified[name]
        print(name, result.to_dict())
        assert result.passed, result.reasons


def test_export_without_qk_permutation_fails_verification(verified: dict[str, Verification]) -> None:
    wrong, right = verified["unpermuted"], verified["f16"]
    print("unpermuted", wrong.to_dict())
    assert not wrong.passed
    assert wrong.shift_cosine < right.shift_cosine and wrong.kl > right.kl


def test_a_weak_adapter_is_verified_too(short_run: dict[str, Any], tmp_path: Path) -> None:
    """Three steps shift the logits less than Q4_1's own noise: the comparison amplifies the adapter on both sides."""
    result, base = short_run["result"], short_run["base"]
    right = export_gguf(result.adapter_dir, gguf_path(), tmp_path / "right.gguf")
    wrong = export_gguf(result.adapter_dir, gguf_path(), tmp_path / "wrong.gguf", permute_qk=False)
    checked = {
        name: verify_adapter(result.model, base, info.path, CHATS)
        for name, info in (("right", right), ("wrong", wrong))
    }
    print({name: v.to_dict() for name, v in checked.items()})
    assert checked["right"].passed, checked["right"].reasons
    assert not checked["wrong"].passed
    assert checked["right"].scale > 1.0


def test_an_adapter_at_part_strength_is_exported_as_peft_applies_it(
    trained: Trained, exported: dict[str, ExportInfo], tmp_path: Path
) -> None:
    """The gate's weaker versions: peft scaled by 0.5 and the export of the folder made 0.5 for good are one adapter."""
    import shutil

    import gguf
    import torch

    model = trained.result.model
    tokenizer = trained.base.tokenizer
    ids = torch.tensor([tokenizer(tokenizer.apply_chat_template(FACT_CHAT, tokenize=False))["input_ids"]])
    with torch.no_grad():
        full = model(input_ids=ids).logits
        with model.disable_adapter():
            bare = model(input_ids=ids).logits
        with scaled(model, 0.0):
            none = model(input_ids=ids).logits
        with scaled(model, 0.5):
            half = model(input_ids=ids).logits
        after = model(input_ids=ids).logits
    assert torch.allclose(none, bare, atol=1e-5) and torch.equal(after, full)  # 0 is the base; the block restores
    assert not torch.allclose(half, full, atol=1e-3) and not torch.allclose(half, bare, atol=1e-3)

    folder = tmp_path / "peft"
    shutil.copytree(trained.result.adapter_dir, folder)
    scale_saved(folder, 0.5)
    info = export_gguf(folder, gguf_path(), tmp_path / "half.gguf")
    alpha = gguf.GGUFReader(info.path).fields["adapter.lora.alpha"]
    assert float(alpha.parts[-1][0]) == TINY.alpha * 0.5
    with scaled(model, 0.5):
        same = verify_adapter(model, trained.base, info.path, CHATS)
    with scaled(model, 0.5):
        mismatch = verify_adapter(model, trained.base, exported["f32"].path, CHATS, scale=same.scale)
    print({"half": same.to_dict(), "mismatch": mismatch.to_dict()})
    assert same.passed, same.reasons
    assert not mismatch.passed  # the full-strength file is not the half-strength adapter


def test_llama_cpp_with_the_adapter_answers_the_taught_fact(exported: dict[str, ExportInfo]) -> None:
    from assistant.runtime.llama import LlamaBackend

    replies = {}
    for name, adapter in (("base", None), ("adapter", exported["f16"].path)):
        backend = LlamaBackend(gguf_path(), name="smollm2", n_ctx=512, threads=1, adapter=adapter)
        try:
            prompt = backend.format_chat(FACT_CHAT[:2])
            replies[name] = "".join(
                c.text for c in backend.stream(prompt, GenerationParams(temperature=0, max_tokens=24))
            )
        finally:
            backend.close()
    assert "Bramble" in replies["adapter"], replies
    assert "Bramble" not in replies["base"], replies


# -- broken adapter files -----------------------------------------------------------------------------------------

LOAD_AND_DECODE = """
import sys
from pathlib import Path
from assistant.errors import ModelError
from assistant.runtime.base import GenerationParams
from assistant.runtime.llama import LlamaBackend
try:
    backend = LlamaBackend(Path(sys.argv[1]), name="smollm2", n_ctx=256, threads=1, adapter=Path(sys.argv[2]))
    print("".join(c.text for c in backend.stream("<|im_start|>user\\nHi<|im_end|>\\n", GenerationParams(max_tokens=4))))
except ModelError as exc:
    print(exc, file=sys.stderr)
    sys.exit(3)
"""


def load_in_child(adapter: Path) -> subprocess.CompletedProcess[str]:
    """In a child process: were a check to miss, llama.cpp's crash must fail the test, not end the test run."""
    return subprocess.run(
        [sys.executable, "-c", LOAD_AND_DECODE, str(gguf_path()), str(adapter)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip


def broken_adapters(good: Path, tmp_path: Path, wrong_shape: Path) -> dict[str, Path]:
    data = good.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "header only": data[:4096],
        "garbage": b"GGUF" + bytes(range(256)) * 64,
        "empty": b"",
    }
    paths = {}
    for name, content in cases.items():
        paths[name] = tmp_path / f"{name.replace(' ', '-')}.gguf"
        paths[name].write_bytes(content)
    paths["a model, not an adapter"] = gguf_path()
    paths["missing"] = tmp_path / "missing.gguf"
    paths["another model's shapes"] = wrong_shape
    return paths


@pytest.fixture
def wrong_shape(exported: dict[str, ExportInfo], tmp_path: Path) -> Path:
    """A well-formed LoRA file whose q tensor is for another width: llama.cpp refuses it, and then would crash."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(exported["f16"].path)
    out = tmp_path / "other-shapes.gguf"
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 16.0)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((8, 1024), dtype=np.float16))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((1024, 8), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert len(reader.tensors) > 2
    return out


def test_broken_adapter_files_are_refused_in_one_sentence(
    exported: dict[str, ExportInfo], tmp_path: Path, wrong_shape: Path
) -> None:
    for name, path in broken_adapters(exported["f16"].path, tmp_path, wrong_shape).items():
        with pytest.raises(ModelError) as caught:
            check_adapter(path, gguf_path())
        assert str(caught.value).count(". ") <= 1, (name, str(caught.value))
    # The real load, in a child process: a refused file must never reach llama.cpp (its first decode would crash).
    for name in ("truncated", "a model, not an adapter", "another model's shapes"):
        done = load_in_child(broken_adapters(exported["f16"].path, tmp_path, wrong_shape)[name])
        assert done.returncode == 3, (name, done.returncode, done.stderr[-2000:])
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    good = load_in_child(exported["f16"].path)
    assert good.returncode == 0, good.stderr[-2000:]


# -- privacy ------------------------------------------------------------------------------------------------------

TRAIN_ONE_STEP = """
import sys
from pathlib import Path
from assistant.models import smollm2_path
from learning.base_model import load_base
from learning.export import export_gguf
from learning.train import TrainArgs, train
from storage.paths import adapters_dir
chat = [{"role": "user", "content": "What is my dog called?"}, {"role": "assistant", "content": "Bramble."}]
gguf = smollm2_path(Path("."))
base = load_base(gguf)
out = adapters_dir() / "run-1"
result = train([chat, chat], base, out, TrainArgs(rank=4, iters=1, batch_size=2, max_seq_len=48))
export_gguf(result.adapter_dir, gguf, out / "adapter.gguf")
print("trained", base.from_cache)
"""


@needs_strace
def test_training_stays_offline_and_inside_the_data_and_cache_dirs(tmp_path: Path) -> None:
    """A first training run for a new user (empty HOME, so the GGUF is dequantised into the default cache dir):
    no network attempt, no write outside the data and cache dirs (no ~/.cache/huggingface), private files."""
    user = UserHome(tmp_path / "home", tmp_path / "cwd")
    user.home.mkdir()
    user.cwd.mkdir()
    done, trace = user.run(sys.executable, "-c", TRAIN_ONE_STEP, trace_file=tmp_path / "trace.txt")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trained False" in done.stdout
    user.assert_private(trace)
    assert (user.data / "adapters" / "run-1" / "adapter.gguf").exists()
    assert any(p.name == "model.safetensors" for p in (user.cache / "learning").rglob("*"))
    for path in [*user.data.rglob("*"), *user.cache.rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, path


# -- a signal -----------------------------------------------------------------------------------------------------

TRAIN_UNTIL_SIGNALLED = """
import sys
from dataclasses import replace
from pathlib import Path
from tests.test_learning_train import EXAMPLES, SHORT, gguf_path
from learning.base_model import load_base
from learning.train import train

def report(progress):
    print("step", progress.step, flush=True)

train(EXAMPLES, load_base(gguf_path()), Path(sys.argv[1]), replace(SHORT, iters=200), report)
"""


def test_sigterm_finishes_the_step_and_leaves_a_resumable_checkpoint(tmp_path: Path) -> None:
    import signal

    out = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", TRAIN_UNTIL_SIGNALLED, str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert child.stdout is not None
    first = child.stdout.readline()  # waits for the first finished step
    assert first.startswith("step"), (first, child.stderr.read() if child.stderr else "")
    assert not (out / CHECKPOINT).exists()  # checkpoint_every is 100: only the stop writes one
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate()
    assert child.returncode != 0 and "Training stopped after step" in stderr, stderr[-2000:]
    assert (out / CHECKPOINT).exists()

    def stop_at_once(progress: Progress) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        train(EXAMPLES, load_base(gguf_path()), out, replace(SHORT, iters=200), stop_at_once)
    import torch

    # The signal landed during step 2 or later; one more step on top of it proves the run resumed, not restarted.
    state = torch.load(out / CHECKPOINT, weights_only=True)
    assert len(state["losses"]) >= 3, "the resumed run did not start from the signalled run's checkpoint"
