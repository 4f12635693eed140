"""Semantic memory: retrieval quality, embedding and indexing speed, query latency at scale, decode with memory on.

1. **Retrieval.** The labelled set of ``bench/recall_data.py`` (~4,300 messages over ~420 sessions, ~150 questions
   whose answer lies in exactly one earlier message) is imported into a fresh store and indexed with the real
   embedder. Every question is asked in ``hybrid``, ``vector`` and ``lexical`` mode (order rotated per question):
   recall@1, recall@5, MRR@10, and each mode's query latency, all in the same run.
2. **Speed.** Embedding throughput on the embedder's threads; insert rate with embedding (``Memory.index_pending``)
   and without (our ``ChromaIndex.upsert`` against a bare ``collection.upsert`` in alternating batches); query
   latency (embed + search) p50/p95 at 10,000 and 100,000 stored messages against embed + a bare chromadb query;
   index size on disk per 10,000 messages. Growing to 10k and 100k uses **synthetic vectors** (real embeddings of
   the dataset plus Gaussian noise, renormalised) for chatter messages stored in SQLite: embedding 100,000 texts on
   one thread would take ~15 minutes. Query vectors are real embeddings of the questions.
3. **Decode with memory on.** Raw llama-cpp-python ``create_completion`` against a whole ``Session`` turn with
   memory on (recalled snippets in the prompt, the same rendered prompt given to the raw side), once with the
   index idle and once while the background indexer embeds a few hundred pending messages.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from pathlib import Path
from typing import Any

from bench import SEED, Row, load_average, log, median, spread, temp_home

MODES = ("hybrid", "vector", "lexical")
K = 10  # depth searched for MRR; recall@1 and @5 read the same list
SCALES = (10_000, 100_000)
QUERY_SAMPLES = 60  # questions timed per mode at each scale
GROW_BATCH = 1000
MEASURED_SESSIONS = 60  # sessions indexed through Memory.index_pending for the with-embedding insert rate
NOISE = 0.6  # synthetic vector = normalise(real + NOISE * gaussian / sqrt(dim))
DECODE_TEXT = "What is my sister's dog called? Then write a long story about a day at the beach with that dog."
CACHE = Path.home() / ".cache" / "assistant-bench" / "models"  # the ONNX export (once, ~20 s), kept between runs


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return round(ordered[index], 2)


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class TimedIndex:
    """Wraps the real index: times upserts (insert without embedding) and keeps the vectors for synthetic growth."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.upsert_s = 0.0
        self.upserted = 0
        self.vectors: list[list[float]] = []

    def upsert(self, ids: list[int], embeddings: list[list[float]], metadatas: list[dict]) -> None:
        started = time.perf_counter()
        self.inner.upsert(ids, embeddings, metadatas)
        self.upsert_s += time.perf_counter() - started
        self.upserted += len(ids)
        self.vectors.extend(embeddings)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _cache_file(embedder: Any) -> Path:
    from storage.embedder import ONNX_NAME

    return CACHE / f"recall-vectors-{embedder.engine}-{ONNX_NAME}.json"


def index_from_cache(store: Any, memory: Any, index: Any, embedder: Any) -> dict[str, Any]:
    """Index every pending message with vectors from the cache, embedding (once) only texts it lacks."""
    import json

    from storage import retrieval
    from storage.db import now

    path = _cache_file(embedder)
    try:
        cache: dict[str, list[float]] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    with store.guard() as db:
        rows = db.execute(
            "SELECT m.id, m.conversation_id, m.role, m.content FROM messages m WHERE NOT EXISTS "
            "(SELECT 1 FROM vector_indexed v WHERE v.message_id = m.id) ORDER BY m.id"
        ).fetchall()
    items = [
        (mid, cid, role, number, piece)
        for mid, cid, role, content in rows
        if retrieval.worth_recalling(content)
        for number, piece in enumerate(retrieval.chunks(content))
    ]
    missing = sorted({piece for *_, piece in items} - set(cache))
    for start in range(0, len(missing), 32):
        part = missing[start : start + 32]
        cache.update(zip(part, embedder.embed(part), strict=True))
    if missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cache), encoding="utf-8")
    for start in range(0, len(items), 500):
        part = items[start : start + 500]
        index.upsert(
            [i[0] for i in part],
            [cache[i[4]] for i in part],
            [{"conversation_id": i[1], "role": i[2], "chunk": i[3]} for i in part],
        )
    with store.guard(write=True) as db:
        db.execute("INSERT OR IGNORE INTO vector_indexed (message_id, indexed_at) SELECT id, ? FROM messages", [now()])
    return {"messages": len(rows), "embedded_now": len(missing), "from_cache": len(items) - len(missing)}


def _message_ids(store: Any, conversation_ids: list[int | None]) -> list[list[int]]:
    with store.guard() as db:
        return [
            [r[0] for r in db.execute("SELECT id FROM messages WHERE conversation_id = ? ORDER BY id", [cid])]
            for cid in conversation_ids
        ]


def _rank(results: list[Any], message_id: int) -> int | None:
    for rank, recall in enumerate(results, 1):
        if recall.message_id == message_id:
            return rank
    return None


def evaluate(memory: Any, dataset: Any, ids: list[list[int]]) -> dict[str, Any]:
    """Every question in every mode, the mode order rotated per question; ranks, stale-above counts, latency."""
    per_mode: dict[str, dict[str, Any]] = {m: {"ranks": [], "ms": [], "stale_above": 0, "misses": []} for m in MODES}
    changed = [q for q in dataset.questions if q.changed]
    for number, question in enumerate(dataset.questions):
        answer = ids[question.conversation][question.message]
        stale = [ids[c][m] for c, m in question.stale]
        shift = number % len(MODES)
        for mode in MODES[shift:] + MODES[:shift]:
            started = time.perf_counter()
            results = memory.search(question.text, K, mode=mode)
            per_mode[mode]["ms"].append((time.perf_counter() - started) * 1000)
            rank = _rank(results, answer)
            per_mode[mode]["ranks"].append(rank)
            if rank != 1 and len(per_mode[mode]["misses"]) < 200:
                top = results[0].text[:90] if results else ""
                per_mode[mode]["misses"].append({"q": question.text, "rank": rank, "top": top})
            if stale:
                stale_ranks = [r for r in (_rank(results, s) for s in stale) if r is not None]
                if stale_ranks and (rank is None or min(stale_ranks) < rank):
                    per_mode[mode]["stale_above"] += 1
    out: dict[str, Any] = {"questions": len(dataset.questions), "changed_questions": len(changed)}
    for mode, data in per_mode.items():
        ranks = data["ranks"]
        n = len(ranks)
        out[mode] = {
            "recall_at_1": round(sum(r == 1 for r in ranks) / n, 4),
            "recall_at_5": round(sum(r is not None and r <= 5 for r in ranks) / n, 4),
            "mrr_at_10": round(sum(1 / r for r in ranks if r is not None) / n, 4),
            "changed_recall_at_1": round(
                sum(r == 1 for r, q in zip(ranks, dataset.questions, strict=True) if q.changed) / max(len(changed), 1),
                4,
            ),
            "stale_ranked_above_newest": data["stale_above"],
            "query_ms_p50": percentile(data["ms"], 0.5),
            "query_ms_p95": percentile(data["ms"], 0.95),
            "by_kind_recall_at_1": _by_kind(ranks, dataset.questions),
            "misses": data["misses"][:40],
        }
    return out


def _by_kind(ranks: list[int | None], questions: list[Any]) -> dict[str, float]:
    kinds: dict[str, list[bool]] = {}
    for rank, question in zip(ranks, questions, strict=True):
        kinds.setdefault(question.kind, []).append(rank == 1)
    return {kind: round(sum(hits) / len(hits), 2) for kind, hits in sorted(kinds.items())}


def _synthetic(rng: random.Random, base: Any, count: int) -> Any:
    import numpy as np

    generator = np.random.default_rng(rng.randrange(2**32))
    picks = base[generator.integers(0, len(base), count)]
    vectors = picks + NOISE * generator.standard_normal(picks.shape) / math.sqrt(base.shape[1])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def grow(store: Any, index: Any, base: Any, target: int, rng: random.Random) -> dict[str, Any]:
    """Add chatter messages (SQLite) with synthetic vectors until ``target`` messages are stored and indexed.

    Batches alternate between our ``ChromaIndex.upsert`` and a bare ``collection.upsert`` (the baseline).
    """
    from bench.recall_data import filler
    from storage.db import now

    with store.guard() as db:
        have = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    if have >= target:
        return {"added": 0}
    started = time.perf_counter()
    conversations = filler(rng, target - have)
    conversation_ids = store.import_conversations(conversations)
    sqlite_s = time.perf_counter() - started
    with store.guard(write=True) as db:
        rows = db.execute(
            "SELECT m.id, m.conversation_id, m.role FROM messages m WHERE NOT EXISTS "
            "(SELECT 1 FROM vector_indexed v WHERE v.message_id = m.id) AND m.conversation_id IN "
            f"({', '.join(str(int(c)) for c in conversation_ids if c)}) ORDER BY m.id"
        ).fetchall()
        db.execute("INSERT OR IGNORE INTO vector_indexed (message_id, indexed_at) SELECT id, ? FROM messages", [now()])
    vectors = _synthetic(rng, base, len(rows)).tolist()
    collection = index._open()  # the bare chromadb collection the baseline writes to
    ours = {"n": 0, "s": 0.0}
    bare = {"n": 0, "s": 0.0}
    for number, start in enumerate(range(0, len(rows), GROW_BATCH)):
        part = rows[start : start + GROW_BATCH]
        ids = [r[0] for r in part]
        metas = [{"conversation_id": r[1], "role": r[2], "chunk": 0} for r in part]
        embeddings = vectors[start : start + GROW_BATCH]
        t0 = time.perf_counter()
        if number % 2 == 0:
            index.upsert(ids, embeddings, metas)
            side = ours
        else:
            collection.upsert(
                ids=[f"{i}:0" for i in ids],
                embeddings=embeddings,
                metadatas=[{**m, "message_id": i} for i, m in zip(ids, metas, strict=True)],
            )
            side = bare
        side["s"] += time.perf_counter() - t0
        side["n"] += len(part)
    return {
        "added": len(rows),
        "sqlite_import_s": round(sqlite_s, 1),
        "ours_msgs_per_s": round(ours["n"] / ours["s"], 1) if ours["s"] else None,
        "bare_msgs_per_s": round(bare["n"] / bare["s"], 1) if bare["s"] else None,
    }


def latency(memory: Any, embedder: Any, index: Any, questions: list[Any], samples: int) -> dict[str, Any]:
    """embed + search, per question: hybrid, vector (ours) and embed + bare chromadb query, interleaved."""
    collection = index._open()
    times: dict[str, list[float]] = {"hybrid": [], "vector": [], "bare_chromadb": [], "embed_only": []}
    for question in questions[:samples]:
        for kind in ("hybrid", "bare_chromadb", "vector"):
            t0 = time.perf_counter()
            if kind == "bare_chromadb":
                vector = embedder.embed([question.text])[0]
                t1 = time.perf_counter()
                collection.query(query_embeddings=[vector], n_results=5, include=["metadatas", "distances"])
                times["embed_only"].append((t1 - t0) * 1000)
            else:
                memory.search(question.text, 5, mode=kind)
            times[kind].append((time.perf_counter() - t0) * 1000)
    return {
        f"{kind}_ms_{name}": percentile(values, q)
        for kind, values in times.items()
        for name, q in (("p50", 0.5), ("p95", 0.95))
    } | {"samples": len(times["hybrid"])}


def run(full: bool = False, reps: int = 3, max_tokens: int = 64) -> dict[str, Any]:
    """The whole part. ``full=False`` stops at 10,000 messages (the 100k growth takes a few minutes)."""
    import numpy as np

    from bench.recall_data import generate
    from storage.db import open_store
    from storage.embedder import Embedder
    from storage.memory import BATCH, Memory
    from storage.vectors import ChromaIndex

    result: dict[str, Any] = {"load_average_before": load_average()}
    rng = random.Random(SEED)
    with temp_home() as home:
        store = open_store(home)
        dataset = generate()
        result["dataset"] = dataset.stats | {"seed": dataset.seed}

        embedder = Embedder(threads=1, models_dir=CACHE)
        started = time.perf_counter()
        embedder.load()
        result["embedder"] = {
            "engine": embedder.engine,
            "threads": embedder.threads,
            "load_s": round(time.perf_counter() - started, 2),
        }
        # Embedding throughput: the dataset's messages in the indexer's batch size, on the embedder's threads.
        texts = [m for m in dataset.messages if len(m) >= 12][:768]
        embedder.embed(texts[:BATCH])  # warm
        rates = []
        for rep in range(3):
            part = texts[rep * 256 : (rep + 1) * 256]
            t0 = time.perf_counter()
            for start in range(0, len(part), BATCH):
                embedder.embed(part[start : start + BATCH])
            rates.append(len(part) / (time.perf_counter() - t0))
        result["embedder"]["sentences_per_s"] = median(rates)
        result["embedder"]["sentences_per_s_range"] = spread(rates)
        log(f"  embedder {embedder.engine}: {median(rates)} sentences/s on {embedder.threads} thread(s)")

        # Index the first sessions the way the app does (Memory.index_pending): messages/s including embedding,
        # and the upserts alone. The rest of the dataset is indexed from a vector cache (each distinct text
        # embedded once, kept between runs): same vectors, a fraction of the time.
        index = TimedIndex(ChromaIndex(home / "memory"))
        memory = Memory(store, home, embedder=embedder, index=index)
        conversation_ids = store.import_conversations(dataset.conversations[:MEASURED_SESSIONS])
        t0 = time.perf_counter()
        indexed = memory.index_pending()
        index_s = time.perf_counter() - t0
        result["index"] = {
            "messages": indexed,
            "vectors": index.upserted,
            "seconds": round(index_s, 1),
            "msgs_per_s_with_embedding": round(indexed / index_s, 1),
            "upsert_msgs_per_s": round(index.upserted / index.upsert_s, 1) if index.upsert_s else None,
        }
        log(f"  indexed {indexed} messages in {index_s:.1f} s (Memory.index_pending)")
        conversation_ids += store.import_conversations(dataset.conversations[MEASURED_SESSIONS:])
        ids = _message_ids(store, conversation_ids)
        t0 = time.perf_counter()
        result["index"]["rest"] = index_from_cache(store, memory, index, embedder)
        log(f"  indexed the other {result['index']['rest']['messages']} in {time.perf_counter() - t0:.1f} s (cache)")

        result["retrieval"] = evaluate(memory, dataset, ids)
        for mode in MODES:
            r = result["retrieval"][mode]
            log(f"  {mode:8} R@1 {r['recall_at_1']:.3f}  R@5 {r['recall_at_5']:.3f}  MRR {r['mrr_at_10']:.3f}")

        log("  decode with memory on")
        try:
            from bench.recall_decode import decode

            result["decode"] = decode(store, home, memory, reps, max_tokens)
        except Exception as exc:  # the speed figures below still count
            log(f"  decode failed: {type(exc).__name__}: {exc}")
            result["decode"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}

        index_from_cache(store, memory, index, embedder)  # the decode part's leftover pending messages
        base = np.array(index.vectors, dtype=np.float32)
        chroma = ChromaIndex(home / "memory")
        memory = Memory(store, home, embedder=embedder, index=chroma)
        result["scales"] = {}
        for scale in SCALES if full else SCALES[:1]:
            log(f"  growing to {scale:,} messages (synthetic vectors)")
            t0 = time.perf_counter()
            growth = grow(store, chroma, base, scale, rng)
            growth["seconds"] = round(time.perf_counter() - t0, 1)
            stored = chroma.count()
            size = du(home / "memory")
            entry = growth | {
                "vectors": stored,
                "index_mb": round(size / 2**20, 1),
                "index_mb_per_10k": round(size / 2**20 / stored * 10_000, 1),
            }
            entry |= latency(memory, embedder, chroma, dataset.questions, QUERY_SAMPLES)
            result["scales"][str(scale)] = entry
            log(
                f"  {scale:,}: hybrid p50 {entry['hybrid_ms_p50']} ms p95 {entry['hybrid_ms_p95']} ms; "
                f"bare {entry['bare_chromadb_ms_p50']} ms; index {entry['index_mb']} MB"
            )
        memory.close()
        store.close()
        shutil.rmtree(home / "memory", ignore_errors=True)
    result["load_average_after"] = load_average()
    return result


def rows(result: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    retrieval = result["retrieval"]
    vector = retrieval["vector"]
    n = retrieval["questions"]
    for mode in ("hybrid", "lexical"):
        r = retrieval[mode]
        for key, label in (("recall_at_1", "recall@1"), ("recall_at_5", "recall@5"), ("mrr_at_10", "MRR@10")):
            out.append(
                Row(
                    "recall",
                    f"{label}: {mode} vs plain vector ({n} questions)",
                    r[key],
                    vector[key],
                    "",
                    "diff",
                    ">= vector" if mode == "hybrid" else "",
                    (r[key] >= vector[key]) if mode == "hybrid" else None,
                )
            )
    hybrid = retrieval["hybrid"]
    out.append(
        Row(
            "recall",
            f"changed facts: newest at rank 1, hybrid vs vector ({retrieval['changed_questions']} q)",
            hybrid["changed_recall_at_1"],
            vector["changed_recall_at_1"],
            "",
            "diff",
            note="an older value ranked above the newest: "
            + ", ".join(f"{m} {retrieval[m]['stale_ranked_above_newest']}" for m in MODES),
        )
    )
    out.append(
        Row(
            "recall",
            f"query ms p50 ({result['dataset']['messages']:,} msgs): hybrid vs vector",
            hybrid["query_ms_p50"],
            vector["query_ms_p50"],
            "ms",
            "ratio",
            note=f"lexical {retrieval['lexical']['query_ms_p50']} ms; p95 hybrid {hybrid['query_ms_p95']} ms",
        )
    )
    embedder = result["embedder"]
    out.append(
        Row(
            "recall",
            f"embedding sentences/s ({embedder['engine']}, {embedder['threads']} thread)",
            embedder["sentences_per_s"],
            None,
            "/s",
            "ratio",
            note=f"range {embedder['sentences_per_s_range']}; load {embedder['load_s']} s",
        )
    )
    index = result["index"]
    out.append(
        Row(
            "recall",
            f"insert msgs/s incl. embedding ({index['messages']} msgs)",
            index["msgs_per_s_with_embedding"],
            None,
            "/s",
            "ratio",
        )
    )
    for scale, entry in result["scales"].items():
        k = f"{int(scale) // 1000}k"
        if entry.get("ours_msgs_per_s"):
            out.append(
                Row(
                    "recall",
                    f"insert msgs/s excl. embedding, to {k}: ChromaIndex vs bare upsert",
                    entry["ours_msgs_per_s"],
                    entry["bare_msgs_per_s"],
                    "/s",
                    "ratio",
                )
            )
        limit = 30 if scale == "10000" else 60
        for mode in ("hybrid", "vector"):
            out.append(
                Row(
                    "recall",
                    f"query p50 ms at {k} (embed+search): {mode} vs bare chromadb",
                    entry[f"{mode}_ms_p50"],
                    entry["bare_chromadb_ms_p50"],
                    "ms",
                    "ratio",
                    f"<= {limit} ms" if mode == "hybrid" else "",
                    entry[f"{mode}_ms_p50"] <= limit if mode == "hybrid" else None,
                    note=f"p95 {entry[f'{mode}_ms_p95']} ms (bare {entry['bare_chromadb_ms_p95']} ms); "
                    f"embedding alone p50 {entry['embed_only_ms_p50']} ms; synthetic vectors beyond the 4.3k dataset"
                    if mode == "hybrid"
                    else "",
                )
            )
        out.append(Row("recall", f"index MB per 10k messages (at {k})", entry["index_mb_per_10k"], None, "MB", "ratio"))
    decode = result.get("decode", {})
    if "error" in decode:
        out.append(Row("recall", "decode with memory (failed)", None, None, "", "diff", note=decode["error"]))
    elif decode:
        t = f"{decode['threads']} thr + embedder {decode['embedder_threads']}"
        for kind, label in (("idle", "memory on, index idle"), ("indexing", "memory on, indexer busy")):
            ratio = decode[f"{kind}_ratio"]
            out.append(
                Row(
                    "recall",
                    f"decode tok/s: turn with {label} vs raw ({t})",
                    decode[f"memory_{kind}"]["decode_tps"],
                    decode["raw"]["decode_tps"],
                    "tok/s",
                    "ratio",
                    ">= 90%",
                    None if ratio is None else ratio >= 0.9,
                    paired=ratio,
                    note=f"per-pair ratios {decode[f'{kind}_ratio_range']}; {decode['recalled_snippets']} snippets "
                    f"recalled, prompt {decode['prompt_tokens']} tokens"
                    + (f"; indexed during each turn {decode['indexed_during_turn']}" if kind == "indexing" else ""),
                )
            )
    return out
