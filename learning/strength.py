"""An adapter at part strength: its update multiplied by a factor between 0 (the base model) and 1 (as trained).

For a LoRA this is a point on the straight line between the base weights and the trained ones (weight-space
interpolation, as in WiSE-FT, Wortsman et al. 2022): the trained update ``B A`` is scaled, which is only a change of
its alpha. When an adapter at full strength costs general answers, a weaker one often keeps them and still knows the
user: the job's evaluation tries ``STRENGTHS`` in turn (``learning.evaluate.search_strength``) and the adapter is
saved and exported at the strongest one that passes the gate.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storage.paths import make_private

STRENGTHS = (1.0, 0.75, 0.5)  # tried in this order; the first that passes the gate is kept


@contextmanager
def scaled(model: Any, factor: float) -> Iterator[None]:
    """The peft ``model``'s active LoRA layers scaled by ``factor`` for the block (on top of their own scale)."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    saved = [dict(layer.scaling) for layer in layers]
    try:
        for layer in layers:
            layer.scaling = {name: value * factor for name, value in layer.scaling.items()}
        yield
    finally:
        for layer, scaling in zip(layers, saved, strict=True):
            layer.scaling = scaling


def scale_saved(adapter_dir: Path, factor: float) -> None:
    """Make the peft adapter saved in ``adapter_dir`` that much weaker for good: its ``lora_alpha`` times ``factor``.

    Everything that reads the folder afterwards (the export to GGUF, the next run's evaluation of the current
    adapter) then sees the adapter at the chosen strength. The config is replaced in one rename.
    """
    path = adapter_dir / "adapter_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["lora_alpha"] = float(config["lora_alpha"]) * factor
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(config, indent=2), encoding="utf-8")
    make_private(partial)
    os.replace(partial, path)
