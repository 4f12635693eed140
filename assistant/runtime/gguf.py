"""GGUF files, checked before llama.cpp sees them.

llama.cpp reads a GGUF file with mmap and trusts its header: a truncated download (the header and the first few
megabytes of a real model) loads its metadata happily and fails, or worse, later. So the header is parsed here
(GGUF v2/v3: the key-value pairs and every tensor's shape, type and offset) and the file must be long enough to
hold every tensor's data. Only the header is read: a few tens of milliseconds for a 100 MB model.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ModelError

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS

# ggml type id -> (elements per block, bytes per block), from ggml.h / gguf-py's GGML_QUANT_SIZES.
GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 36),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    39: (32, 17),  # MXFP4
}

# GGUF value types: struct formats of the fixed-size ones; 8 is a string, 9 an array.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")


@dataclass(slots=True)
class TensorInfo:
    name: str
    dims: tuple[int, ...]
    type: int
    offset: int  # from the start of the data section

    def nbytes(self) -> int | None:
        """Bytes of this tensor's data; None for a ggml type this file does not know (newer than it)."""
        block = GGML_BLOCKS.get(self.type)
        if block is None:
            return None
        count = 1
        for dim in self.dims:
            count *= dim
        return count // block[0] * block[1]


@dataclass(slots=True)
class GGUFHeader:
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)  # arrays are summarised as their length
    tensors: list[TensorInfo] = field(default_factory=list)
    header_end: int = 0
    data_start: int = 0

    @property
    def alignment(self) -> int:
        value = self.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        return value if isinstance(value, int) and value > 0 else DEFAULT_ALIGNMENT

    def data_end(self) -> int:
        """Where the last tensor's data ends: the least size of a complete file."""
        if not self.tensors:
            return self.header_end
        end = self.data_start
        for tensor in self.tensors:
            end = max(end, self.data_start + tensor.offset + (tensor.nbytes() or 1))
        return end


class _Truncated(Exception):
    """The header runs past the end of the file."""


class _Reader:
    def __init__(self, buffer: mmap.mmap | bytes) -> None:
        self.buffer = buffer
        self.pos = 0

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buffer):
            raise _Truncated
        (value,) = struct.unpack_from("<" + fmt, self.buffer, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.unpack("Q")
        end = self.pos + length
        if end > len(self.buffer):
            raise _Truncated
        raw = self.buffer[self.pos : end]
        self.pos = end
        return bytes(raw).decode("utf-8", "replace")

    def skip_strings(self, count: int) -> None:
        # A tokenizer's vocabulary is ~50,000 strings: one tight loop, bounds checked once per string.
        buffer, pos, end, length_at = self.buffer, self.pos, len(self.buffer), _U64.unpack_from
        for _ in range(count):
            if pos + 8 > end:
                raise _Truncated
            pos += 8 + length_at(buffer, pos)[0]
        if pos > end:
            raise _Truncated
        self.pos = pos

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item, count = self.unpack("I"), self.unpack("Q")
            if item in _SCALARS:  # a fixed-size array is skipped in one step
                self.pos += count * struct.calcsize("<" + _SCALARS[item])
                if self.pos > len(self.buffer):
                    raise _Truncated
            elif item == _STRING:
                self.skip_strings(count)
            else:
                for _ in range(count):
                    self.value(item)
            return count
        raise ValueError(f"unknown value type {kind}")


def read_header(buffer: mmap.mmap | bytes) -> GGUFHeader:
    """Parse a GGUF header; ``_Truncated`` when it runs past the end, ``ValueError`` when it makes no sense."""
    reader = _Reader(buffer)
    if bytes(buffer[:4]) != GGUF_MAGIC:
        raise ValueError("no GGUF magic")
    reader.pos = 4
    version = reader.unpack("I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported (2 and 3 are)")
    tensor_count, kv_count = reader.unpack("Q"), reader.unpack("Q")
    if tensor_count > len(buffer) or kv_count > len(buffer):  # each takes at least one byte: a garbage count
        raise ValueError("impossible tensor or key counts")
    header = GGUFHeader(version)
    for _ in range(kv_count):
        key = reader.string()
        header.metadata[key] = reader.value(reader.unpack("I"))
    for _ in range(tensor_count):
        name = reader.string()
        n_dims = reader.unpack("I")
        if not 1 <= n_dims <= MAX_DIMS:
            raise ValueError(f"tensor {name!r} has {n_dims} dimensions")
        dims = tuple(reader.unpack("Q") for _ in range(n_dims))
        header.tensors.append(TensorInfo(name, dims, reader.unpack("I"), reader.unpack("Q")))
    header.header_end = reader.pos
    align = header.alignment
    header.data_start = (reader.pos + align - 1) // align * align
    return header


_CHECKED: dict[tuple[str, int, int], GGUFHeader | None] = {}  # (path, size, mtime) -> header, for this process


def check_gguf(path: Path) -> GGUFHeader | None:
    """Refuse a missing, unreadable, non-GGUF, damaged or truncated file before llama.cpp sees it.

    Returns the parsed header (None for an empty-bodied file too short to map, which is refused anyway). A file
    already checked in this process, unchanged since (same size and modification time), is not parsed again: a
    chat resolves its model, then loads it.
    """
    try:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key in _CHECKED:
        return _CHECKED[key]
    header = _check(path)
    if key is not None:
        _CHECKED[key] = header
    return header


def _check(path: Path) -> GGUFHeader | None:
    if not path.exists():
        raise ModelError(f"The model file {path} does not exist; add it again with `assistant models add PATH`.")
    if not path.is_file():
        raise ModelError(f"{path} is not a file; give the path of a .gguf model file.")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
            if magic != GGUF_MAGIC:
                raise ModelError(f"{path} is not a GGUF model file (it may be corrupt or another format).")
            size = path.stat().st_size
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                header = read_header(buffer)
    except OSError as exc:
        raise ModelError(f"The model file {path} cannot be read: {exc.strerror or exc}.") from exc
    except _Truncated:
        raise ModelError(
            f"The model file {path} is truncated (its header runs past the end); download or copy it again."
        ) from None
    except (ValueError, OverflowError, struct.error) as exc:
        raise ModelError(f"The model file {path} is a damaged GGUF file ({exc}); download or copy it again.") from None
    needed = header.data_end()
    if size < needed:
        raise ModelError(
            f"The model file {path} is truncated ({size:,} of at least {needed:,} bytes); download or copy it again."
        )
    return header


_LORA_TYPES = {0, 1, 8, 30}  # F32, F16, Q8_0, BF16: what llama.cpp's LoRA export writes


def check_adapter(adapter: Path, base: Path) -> GGUFHeader:
    """Refuse a LoRA file llama.cpp would not apply to ``base``, before llama.cpp sees it.

    llama.cpp rejects such a file itself, but llama-cpp-python does not notice the rejection (a null pointer tested
    with ``is None``) and the first decode segfaults: so its own checks are repeated here, on the headers alone.
    """
    header, model = check_gguf(adapter), check_gguf(base)
    if header is None or model is None:
        raise ModelError(f"The adapter {adapter} is empty or damaged; delete it and train it again.")
    meta = header.metadata
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise ModelError(f"{adapter} is not a LoRA adapter file (a model or another kind of GGUF).")
    arch = model.metadata.get("general.architecture")
    if meta.get("general.architecture") != arch:
        raise ModelError(
            f"The adapter {adapter.name} was made for {meta.get('general.architecture')} models, not {base.name}."
        )
    shapes = {t.name: t.dims for t in model.tensors}
    halves: dict[str, dict[str, TensorInfo]] = {}
    for tensor in header.tensors:
        stem, _, half = tensor.name.rpartition(".lora_")
        if half not in ("a", "b") or stem not in shapes or tensor.type not in _LORA_TYPES or len(tensor.dims) != 2:
            raise ModelError(f"The adapter {adapter.name} does not fit {base.name} (tensor {tensor.name}).")
        halves.setdefault(stem, {})[half] = tensor
    for stem, pair in halves.items():
        a, b = pair.get("a"), pair.get("b")
        dims = shapes[stem]
        # ggml order: the base weight is (in, out), lora_a (in, rank), lora_b (rank, out).
        if a is None or b is None or a.dims[0] != dims[0] or b.dims[1] != dims[1] or a.dims[1] != b.dims[0]:
            raise ModelError(f"The adapter {adapter.name} does not fit {base.name} (tensor {stem}).")
    if not halves:
        raise ModelError(f"The adapter {adapter.name} holds no LoRA weights.")
    return header
