"""The active model's GGUF as a transformers model, for training: loaded once, kept as an fp32 copy in the cache.

transformers reads a llama GGUF directly (``from_pretrained(folder, gguf_file=name)``) and dequantises it to fp32:
15-23 s and 1.2 GiB for the bundled SmolLM2. The dequantised copy is saved under the cache dir, keyed by a
fingerprint of the GGUF (its name and ``storage.adapters.file_fingerprint``), so later runs load it in well under a
second.
The copy holds no user data (it is the shipped model, only unpacked), so it belongs in the cache, not the data dir.

Nothing here may reach the network: the Hugging Face libraries are told they are offline, and their own cache
(``HF_HOME``) points into our cache dir, before any of them is imported.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import ModelError
from storage.paths import cache_dir, ensure_private_dir

CACHE_FORMAT = 2  # bump when what is saved changes: older copies are then ignored (and pruned)


def offline_env() -> None:
    """Keep the Hugging Face libraries off the network and out of ``~/.cache``; call before importing them."""
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ[key] = "1"
    # The user's own HF_HOME is theirs to choose; without one the hub would write under ~/.cache/huggingface.
    os.environ.setdefault("HF_HOME", str(cache_dir() / "huggingface"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # its fork warning is noise in a training log
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # nothing is downloaded; the job reports progress
    # torch._dynamo (imported by peft) otherwise probes /tmp and makes /tmp/torchinductor_<user>; nothing is compiled.
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        # Made here, private (this also sets the umask): torch would make it world-readable.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(ensure_private_dir(cache_dir() / "torchinductor"))


def fingerprint(gguf: Path) -> str:
    """The cache folder's name: the model's name and the fingerprint adapters are tied to (storage.adapters), so a
    changed or replaced model gets a new copy."""
    from storage.adapters import file_fingerprint

    try:
        digest = file_fingerprint(gguf)
    except OSError as exc:
        raise ModelError(f"The model file {gguf} cannot be read: {exc.strerror or exc}.") from exc
    return f"{gguf.stem[:48]}-{digest}-v{CACHE_FORMAT}"


def learning_cache_dir() -> Path:
    """Where dequantised base models are kept (shared by every data dir, like the embedder's export)."""
    return cache_dir() / "learning"


@dataclass
class BaseModel:
    """A GGUF model loaded into transformers, fp32, with its tokenizer and chat template."""

    model: Any  # transformers' LlamaForCausalLM (or another causal LM)
    tokenizer: Any
    gguf_path: Path
    folder: Path  # the cached fp32 copy it was (or will next time be) loaded from
    load_s: float
    from_cache: bool

    @property
    def architecture(self) -> str:
        return str(self.model.config.model_type)

    @property
    def n_head(self) -> int:
        return int(self.model.config.num_attention_heads)

    @property
    def n_head_kv(self) -> int:
        config = self.model.config
        return int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)


def load_base(gguf: Path, *, use_cache: bool = True) -> BaseModel:
    """Load ``gguf`` into transformers (fp32, eval mode), from the cached copy when there is one."""
    from assistant.models import check_gguf

    check_gguf(gguf)
    offline_env()
    started = time.perf_counter()
    folder = learning_cache_dir() / fingerprint(gguf)
    model = tokenizer = None
    from_cache = False
    if use_cache and (folder / "complete").exists():
        try:
            model, tokenizer = _load_folder(folder)
            from_cache = True
        except Exception:  # a damaged copy is only a cache: read the GGUF again and replace it
            shutil.rmtree(folder, ignore_errors=True)
    if model is None:
        model, tokenizer = _load_gguf(gguf)
        if use_cache:
            _save_copy(model, tokenizer, folder)
    model.eval()
    return BaseModel(model, tokenizer, gguf, folder, time.perf_counter() - started, from_cache)


def _load_folder(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype="float32", local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model, tokenizer


def _load_gguf(gguf: Path) -> tuple[Any, Any]:
    import functools

    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Its dequantising bar (plain tqdm, deaf to transformers' switch) would land in the job's own progress display.
    gguf_utils.tqdm = functools.partial(gguf_utils.tqdm, disable=True)

    try:
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype="float32", local_files_only=True
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    except (ValueError, OSError, KeyError, RuntimeError) as exc:
        raise ModelError(
            f"The model {gguf.name} cannot be trained on: transformers could not read it ({exc})."
        ) from exc
    # save_pretrained refuses a model that still looks quantised; the weights are plain fp32 by now.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


def _save_copy(model: Any, tokenizer: Any, folder: Path) -> None:
    """Save next to the final place, then rename: a run killed mid-save leaves no half copy behind."""
    root = ensure_private_dir(learning_cache_dir())
    for stale in root.iterdir():  # older formats of any model, and half copies of killed runs
        if stale.name.endswith(".partial"):
            if time.time() - stale.stat().st_mtime > 3600:  # a younger one may be another process's, still saving
                shutil.rmtree(stale, ignore_errors=True)
        elif stale.is_dir() and not stale.name.endswith(f"-v{CACHE_FORMAT}"):
            shutil.rmtree(stale, ignore_errors=True)
    partial = root / f"{folder.name}.{os.getpid()}.partial"
    try:
        partial.mkdir(mode=0o700)
        model.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
        (partial / "complete").write_text("ok\n")
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    except OSError:
        # No room or no permission for the cache only costs the next run its fast load.
        shutil.rmtree(partial, ignore_errors=True)
