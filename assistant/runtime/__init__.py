"""Model runtimes behind one protocol."""

from assistant.runtime.base import Backend, Chunk, GenerationParams

__all__ = ["Backend", "Chunk", "GenerationParams"]
