"""A peft LoRA adapter written as llama.cpp's GGUF LoRA file (what ``Llama(lora_path=...)`` loads).

The format, as llama.cpp's ``convert_lora_to_gguf.py`` writes it: ``general.type = adapter``,
``adapter.type = lora``, ``adapter.lora.alpha`` (float32; llama.cpp scales by alpha / rank, where rank is read from
the tensors), and per adapted weight ``blk.N.<name>.weight.lora_a`` / ``.lora_b``: peft's A (rank x in) and B
(out x rank) as they are, no transpose.

One trap: transformers un-permutes the rows of the q and k projections when it reads a llama GGUF (llama.cpp
orders the rotary halves differently from Hugging Face). The adapter was trained against the un-permuted weights,
so lora_b of q_proj and k_proj must get llama.cpp's permutation back (per head for q, per kv-head for k); lora_a
acts on the input side and stays. Without it the adapter still loads and the replies may even look right, which
is why ``learning.verify`` compares logits.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import ModelError
from assistant.models import check_gguf

# Architectures whose GGUF q/k rows transformers un-permutes on load (its GGUF loader's reverse_permute).
PERMUTED_QK = ("llama", "mistral")
DTYPES = {"f16": np.float16, "f32": np.float32}


@dataclass(frozen=True, slots=True)
class ExportInfo:
    path: Path
    tensors: int
    rank: int
    alpha: float
    dtype: str
    permuted_qk: bool
    bytes: int


def permute_rows(weight: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row order: within each head, the two rotary halves interleaved (convert_hf_to_gguf)."""
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _read_adapter(adapter_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from safetensors.numpy import load_file

    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text())
        weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"The trained adapter in {adapter_dir} cannot be read ({exc}).") from exc
    return weights, config


def export_gguf(
    adapter_dir: Path,
    base_gguf: Path,
    out: Path,
    *,
    dtype: str = "f32",
    permute_qk: bool = True,
    extra: dict[str, str] | None = None,
) -> ExportInfo:
    """Write the peft adapter saved in ``adapter_dir`` as a GGUF LoRA for ``base_gguf``; returns what was written.

    ``dtype`` f32 by default: llama.cpp decoded faster with it than with f16 (its f16 path converts every token's
    activations for these tiny matrices; preliminary, busy 2-core machine: 81% vs 74% of the adapter-free speed on
    one thread), and the file is only ~20 MB at rank 16.
    ``permute_qk=False`` exists for the verification's control (an export known to be wrong); never ship one.
    ``extra`` adds string metadata (for example which base and run it came from); llama.cpp ignores it.
    """
    import gguf

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}")
    header = check_gguf(base_gguf)
    metadata = header.metadata if header is not None else {}
    arch = str(metadata.get("general.architecture", ""))
    arch_ids = {name: arch_id for arch_id, name in gguf.MODEL_ARCH_NAMES.items()}
    if arch not in arch_ids:
        raise ModelError(f"Adapters for {arch or 'this'} architecture cannot be exported to llama.cpp's format.")
    n_blocks = int(metadata.get(f"{arch}.block_count", 0))
    n_head = int(metadata.get(f"{arch}.attention.head_count", 0))
    n_head_kv = int(metadata.get(f"{arch}.attention.head_count_kv", n_head))
    names = gguf.get_tensor_name_map(arch_ids[arch], n_blocks)
    base_shapes = {t.name: t.dims for t in header.tensors} if header is not None else {}

    weights, config = _read_adapter(adapter_dir)
    rank = int(config["r"])
    # llama.cpp applies alpha / rank; peft's scale is alpha / sqrt(rank) with rsLoRA: carry that scale over.
    scale = float(config["lora_alpha"]) / (math.sqrt(rank) if config.get("use_rslora") else rank)
    permute = permute_qk and arch in PERMUTED_QK
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in weights.items():
        # base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight -> model.layers.0.self_attn.q_proj
        stem, _, kind = key.removeprefix("base_model.model.").rpartition(".lora_")
        if kind not in ("A.weight", "B.weight"):
            raise ModelError(f"The adapter holds a tensor llama.cpp cannot apply: {key}.")
        target = names.get_name(stem)
        if target is None:
            raise ModelError(f"The adapter's layer {stem} has no counterpart in the {arch} GGUF.")
        pairs.setdefault(target, {})[kind[0]] = value

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, scale * rank)
    for meta_key, meta_value in (extra or {}).items():
        writer.add_string(meta_key, meta_value)
    for target in sorted(pairs, key=_block_order):
        pair = pairs[target]
        if set(pair) != {"A", "B"}:
            raise ModelError(f"The adapter's layer {target} lacks its A or B half.")
        lora_a, lora_b = pair["A"].astype(np.float32), pair["B"].astype(np.float32)
        if permute and target.endswith(".attn_q"):
            lora_b = permute_rows(lora_b, n_head)
        elif permute and target.endswith(".attn_k"):
            lora_b = permute_rows(lora_b, n_head_kv)
        dims = base_shapes.get(target + ".weight")  # ggml order: (in, out)
        if dims is not None and dims[:2] != (lora_a.shape[1], lora_b.shape[0]):
            raise ModelError(f"The adapter's {target} does not fit the base model's shape {dims}.")
        writer.add_tensor(f"{target}.weight.lora_a", lora_a.astype(DTYPES[dtype]))
        writer.add_tensor(f"{target}.weight.lora_b", lora_b.astype(DTYPES[dtype]))
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with partial.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(partial, 0o600)
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ModelError(f"The adapter could not be written to {out}: {exc.strerror or exc}.") from exc
    return ExportInfo(out, 2 * len(pairs), rank, scale * rank, dtype, permute, out.stat().st_size)


def _block_order(name: str) -> tuple[int, str]:
    parts = name.split(".")
    return (int(parts[1]), name) if len(parts) > 1 and parts[0] == "blk" and parts[1].isdigit() else (-1, name)
