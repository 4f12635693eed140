"""Tuning aid for hybrid retrieval: the labelled set of one seed, built once and kept, searched in every mode.

``python -m bench.recall_tune 42 7`` prints recall@1/@5/MRR and the changed-facts figures per seed. The store and
index of each seed are kept in ``~/.cache/assistant-bench/tune-<seed>`` (vectors from the bench's cache, the
question embeddings memoised), so a second run only measures the ranking. Tune on one seed, report on another.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.recall import CACHE, MODES, evaluate, index_from_cache

ROOT = Path.home() / ".cache" / "assistant-bench"


class MemoEmbedder:
    """The real embedder, each distinct text embedded once (the questions repeat across modes and runs)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.memo: dict[str, list[float]] = {}

    def embed(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if missing:
            self.memo.update(zip(missing, self.inner.embed(missing), strict=True))
        return [self.memo[t] for t in texts]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def prepare(seed: int) -> tuple[Any, Any, Any, list[list[int]]]:
    from bench.recall_data import generate
    from storage.db import open_store
    from storage.embedder import Embedder
    from storage.memory import Memory
    from storage.vectors import ChromaIndex

    home = ROOT / f"tune-{seed}"
    dataset = generate(seed)
    embedder = MemoEmbedder(Embedder(threads=1, models_dir=CACHE))
    ready = home / "ids.json"
    fresh = not ready.exists()
    if fresh:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    store = open_store(home)
    memory = Memory(store, home, embedder=embedder, index=ChromaIndex(home / "memory"))
    if fresh:
        cids = store.import_conversations(dataset.conversations)
        index_from_cache(store, memory, memory.index, embedder.inner)
        sql = "SELECT id FROM messages WHERE conversation_id = ? ORDER BY id"
        with store.guard() as db:
            ids = [[r[0] for r in db.execute(sql, [cid])] for cid in cids]
        ready.write_text(json.dumps(ids))
    ids = json.loads(ready.read_text())
    memo = home / "questions.json"
    if memo.exists():
        embedder.memo.update(json.loads(memo.read_text()))
    else:
        embedder.embed([q.text for q in dataset.questions])
        memo.write_text(json.dumps(embedder.memo))
    return memory, dataset, store, ids


def report(seed: int, verbose: bool = False) -> dict[str, Any]:
    memory, dataset, store, ids = prepare(seed)
    started = time.perf_counter()
    result = evaluate(memory, dataset, ids)
    took = time.perf_counter() - started
    print(f"seed {seed}: {dataset.stats['messages']} messages, {len(dataset.questions)} questions ({took:.1f} s)")
    for mode in MODES:
        r = result[mode]
        print(
            f"  {mode:8} R@1 {r['recall_at_1']:.3f}  R@5 {r['recall_at_5']:.3f}  MRR {r['mrr_at_10']:.3f}  "
            f"changed@1 {r['changed_recall_at_1']:.2f}  stale-above {r['stale_ranked_above_newest']:2d}  "
            f"p50 {r['query_ms_p50']} ms"
        )
        if verbose and mode == "hybrid":
            for miss in r["misses"]:
                print(f"     {miss['rank']}: {miss['q']}  <- {miss['top']}")
    memory.close()
    store.close()
    return result


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    for seed in [int(a) for a in args] or [42]:
        report(seed, verbose="-v" in sys.argv)
