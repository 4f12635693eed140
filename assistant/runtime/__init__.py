"""Model runtimes behind one protocol, loaded through one function (``load_backend``)."""

from assistant.runtime.base import Backend, Chunk, GenerationParams
from assistant.runtime.registry import RUNTIMES, Loader, load_backend

__all__ = ["RUNTIMES", "Backend", "Chunk", "GenerationParams", "Loader", "load_backend"]
