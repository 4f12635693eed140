"""The vector index: a small protocol, and its chromadb implementation.

The index is derived data. SQLite says which messages exist and which are indexed (``vector_indexed``); the index
can be deleted or damaged at any time and :class:`storage.memory.Memory` rebuilds it. A message may have several
vectors (chunks of a long message); they share its ``message_id`` and the index reports the best one.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

COLLECTION = "messages"
SQLITE_FILE = "chroma.sqlite3"


def local_settings() -> Any:
    """chromadb settings that keep it in-process and silent, whatever the environment says.

    chromadb's Settings read every field from environment variables and from a ``.env`` file in the working
    directory: ``CHROMA_API_IMPL``/``CHROMA_SERVER_HOST`` would turn the "persistent client" into an HTTP client of
    a server elsewhere, and ``CHROMA_OTEL_COLLECTION_ENDPOINT`` would export traces. Each is pinned here.
    """
    from chromadb.config import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings' init-only switch
        chroma_api_impl="chromadb.api.rust.RustBindingsAPI",
        chroma_server_host=None,
        chroma_server_http_port=None,
        anonymized_telemetry=False,
        chroma_product_telemetry_impl="chromadb.telemetry.product.posthog.Posthog",  # a no-op in chromadb 1.x
        chroma_telemetry_impl="chromadb.telemetry.product.posthog.Posthog",
        chroma_otel_collection_endpoint="",
        allow_reset=True,
    )


class IndexUnavailable(Exception):
    """The index directory is missing or damaged: rebuild it from SQLite."""


class VectorIndex(Protocol):
    """Where message vectors live; chromadb today, anything with these five methods tomorrow."""

    def upsert(self, ids: list[int], embeddings: list[list[float]], metadatas: list[dict]) -> None:
        """Store vectors of messages (ids may repeat: one per chunk, ``metadatas[i]["chunk"]`` tells them apart)."""
        ...

    def delete(self, ids: list[int]) -> None:
        """Remove every vector of these messages."""
        ...

    def query(
        self, embedding: list[float], k: int, exclude_conversation: int | None = None
    ) -> list[tuple[int, float]]:
        """(message_id, cosine similarity) of the k nearest messages, best first."""
        ...

    def count(self) -> int:
        """How many vectors (not messages) are stored."""
        ...

    def reset(self) -> None:
        """Drop everything and start empty."""
        ...


class ChromaIndex:
    """A chromadb PersistentClient at ``path`` (normally ``<home>/memory``): one collection, cosine space.

    Embeddings are always passed explicitly: chromadb's default embedding function would download a model.
    Any failure of chromadb to open or use its files is raised as :class:`IndexUnavailable`.
    """

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.path = path
        self.threads = max(1, threads)
        self._lock = threading.RLock()
        self._client: Any = None
        self._collection: Any = None
        self.created = False  # True when the last open found no index and started an empty one

    # -- lifecycle ------------------------------------------------------------------------------------------

    def _open(self) -> Any:
        if self._collection is not None:
            if not (self.path / SQLITE_FILE).exists():
                # Deleted under our feet: the open client would write into an unlinked file.
                self._drop_client()
                raise IndexUnavailable(f"the memory index {self.path} disappeared")
            return self._collection
        self.created = not (self.path / SQLITE_FILE).exists()
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        # chromadb's own SQLite puts scratch files in /var/tmp (opened and unlinked at once, but written there);
        # this keeps them in the private index dir. Read when that SQLite initialises, so set before the first open.
        os.environ.setdefault("SQLITE_TMPDIR", str(self.path))
        import chromadb

        try:
            client = chromadb.PersistentClient(path=str(self.path), settings=local_settings())
            collection = client.get_or_create_collection(
                COLLECTION,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine", "num_threads": self.threads}},
            )
            collection.count()  # touches the segment files: damage shows here, not on the first query
        except Exception as exc:
            self._client = None
            self._forget_system()
            raise IndexUnavailable(f"the memory index {self.path} cannot be opened: {exc}") from exc
        self._client, self._collection = client, collection
        return collection

    def _forget_system(self) -> None:
        # chromadb caches one System per path; a rebuilt directory must not reuse the old one.
        if "chromadb" not in sys.modules:
            return  # never imported in this process, so nothing is cached (and importing it takes a second)
        try:
            from chromadb.api.client import SharedSystemClient

            SharedSystemClient._identifier_to_system.pop(str(self.path), None)
        except Exception:  # pragma: no cover - chromadb internals moved
            log.debug("could not clear chromadb's system cache", exc_info=True)

    def _drop_client(self) -> None:
        client, self._client, self._collection = self._client, None, None
        if client is not None:
            try:
                client.close()
            except Exception:
                log.debug("closing the chromadb client failed", exc_info=True)
        self._forget_system()

    def _call(self, what: str, fn: Any) -> Any:
        with self._lock:
            collection = self._open()
            try:
                return fn(collection)
            except Exception as exc:
                self._drop_client()
                raise IndexUnavailable(f"the memory index {self.path} failed to {what}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._drop_client()

    def reset(self) -> None:
        with self._lock:
            self._drop_client()
            shutil.rmtree(self.path, ignore_errors=True)
            self._open()
            self.created = True

    # -- data -----------------------------------------------------------------------------------------------

    def upsert(self, ids: list[int], embeddings: list[list[float]], metadatas: list[dict]) -> None:
        if not ids:
            return
        keys = [f"{mid}:{meta.get('chunk', 0)}" for mid, meta in zip(ids, metadatas, strict=True)]
        metas = [{**meta, "message_id": int(mid)} for mid, meta in zip(ids, metadatas, strict=True)]

        def run(c: Any) -> None:
            # A re-indexed message may have fewer chunks than before: drop the old ones first.
            c.delete(where={"message_id": {"$in": sorted(set(ids))}})
            c.upsert(ids=keys, embeddings=embeddings, metadatas=metas)

        self._call("store vectors", run)

    def delete(self, ids: list[int]) -> None:
        if not ids:
            return
        self._call("delete vectors", lambda c: c.delete(where={"message_id": {"$in": [int(i) for i in ids]}}))

    def query(
        self, embedding: list[float], k: int, exclude_conversation: int | None = None
    ) -> list[tuple[int, float]]:
        if k <= 0:
            return []

        def run(c: Any) -> list[tuple[int, float]]:
            total = c.count()
            if not total:
                return []
            where = {"conversation_id": {"$ne": exclude_conversation}} if exclude_conversation is not None else None
            # Several chunks can belong to one message: ask for more, keep each message's best.
            result = c.query(
                query_embeddings=[embedding],
                n_results=min(total, k * 3),
                where=where,
                include=["metadatas", "distances"],
            )
            best: dict[int, float] = {}
            for meta, distance in zip(result["metadatas"][0], result["distances"][0], strict=True):
                mid = int(meta["message_id"])
                similarity = 1.0 - float(distance)  # chromadb's cosine distance is 1 - cosine similarity
                if similarity > best.get(mid, -2.0):
                    best[mid] = similarity
            return sorted(best.items(), key=lambda item: item[1], reverse=True)[:k]

        result: list[tuple[int, float]] = self._call("search", run)
        return result

    def count(self) -> int:
        return int(self._call("count", lambda c: c.count()))
