"""One way to load a model: ``load_backend(spec, settings)`` picks the runtime for the model's format.

Each runtime is a module with a ``load(spec, settings, adapter, n_ctx)`` function, imported only when a model of its
format is loaded (llama_cpp and mlx are heavy). A second runtime is one new module plus one line in ``RUNTIMES``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from assistant.errors import ModelError

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.models import ModelSpec
    from assistant.runtime.base import Backend

# format -> the module that loads it
RUNTIMES: dict[str, str] = {
    "gguf": "assistant.runtime.llama",
}


class Loader(Protocol):
    def __call__(
        self, spec: ModelSpec, settings: Settings, adapter: Path | None = None, *, n_ctx: int | None = None
    ) -> Backend: ...


def load_backend(
    spec: ModelSpec, settings: Settings, adapter: Path | None = None, *, n_ctx: int | None = None
) -> Backend:
    """Load ``spec`` with the runtime for its format; ``n_ctx`` overrides the context size (a quick check)."""
    module_name = RUNTIMES.get(spec.format)
    if module_name is None:
        known = ", ".join(sorted(RUNTIMES))
        raise ModelError(
            f"The model '{spec.name}' is in the {spec.format} format, which this install cannot run (it runs {known})."
        )
    module = importlib.import_module(module_name)
    backend: Backend = module.load(spec, settings, adapter, n_ctx or settings.context_size)
    return backend
