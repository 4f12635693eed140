"""Checker, grounding: ROC AUC against plain lexical overlap, the flag's precision and recall, latency.

The evaluation set (``bench/check_grounding_data.py``) is built with seed :data:`REPORT_SEED`; the threshold and
weights in ``assistant/checks/grounding.py`` were tuned on :data:`TUNE_SEED` (``python -m bench.check_grounding
--tune`` prints the grid). The baseline scores a reply by the share of its content words found in the sources.
Latency: ~500-character replies (several answers joined) against their usual context, after one warm-up call,
median and p95 over :data:`LATENCY_REPS` calls with the vector and context caches cleared before each (the worst
case: a chat's context changes every turn).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path
from typing import Any

from bench import Row, log

TUNE_SEED = 1
REPORT_SEED = 2
LATENCY_REPS = 60
CACHE = Path.home() / ".cache" / "assistant-bench" / "models"  # the ONNX export, shared with the recall part
_STOP = frozenset("a an the and or but of in on at to for is are was were be it its you your i my me".split())


def auroc(scores: list[float], labels: list[int]) -> float:
    """ROC AUC by Mann-Whitney: the chance that a grounded item outscores an ungrounded one (ties count half)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def lexical_overlap(text: str, sources: list[str]) -> float:
    """The baseline: share of the reply's content words that appear in any source."""
    words = [w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in _STOP]
    vocabulary = set(re.findall(r"[a-z0-9']+", " ".join(sources).lower()))
    return sum(w in vocabulary for w in words) / len(words) if words else 1.0


def _embedder() -> Any:
    from storage.embedder import Embedder

    embedder = Embedder(threads=1, models_dir=CACHE)
    embedder.load()
    return embedder


def evaluate(seed: int, embedder: Any) -> dict[str, Any]:
    from assistant.checks import grounding
    from bench.check_grounding_data import build

    items = build(seed)
    raw = [grounding.ground(i.answer, i.context, embedder=embedder).score for i in items]
    ours = [0.0 if s is None else s for s in raw]  # None (off-topic sources) would count as unsupported here
    base = [lexical_overlap(i.answer, i.context) for i in items]
    labels = [i.label for i in items]
    flagged = [s < grounding.THRESHOLD for s in ours]
    true_pos = sum(f and y == 0 for f, y in zip(flagged, labels, strict=True))
    kinds = sorted({i.kind for i in items})
    by_kind = {
        k: round(
            statistics.mean(
                (s < grounding.THRESHOLD) == (i.label == 0) for s, i in zip(ours, items, strict=True) if i.kind == k
            ),
            3,
        )
        for k in kinds
    }
    base_threshold = _best_threshold(base, labels)
    base_flagged = [s < base_threshold for s in base]
    base_tp = sum(f and y == 0 for f, y in zip(base_flagged, labels, strict=True))
    return {
        "seed": seed,
        "items": len(items),
        "ungrounded": labels.count(0),
        "auroc": round(auroc(ours, labels), 4),
        "auroc_lexical": round(auroc(base, labels), 4),
        "threshold": grounding.THRESHOLD,
        "precision": round(true_pos / max(1, sum(flagged)), 4),
        "recall": round(true_pos / max(1, labels.count(0)), 4),
        "lexical_threshold": base_threshold,
        "precision_lexical": round(base_tp / max(1, sum(base_flagged)), 4),
        "recall_lexical": round(base_tp / max(1, labels.count(0)), 4),
        "accuracy_by_kind": by_kind,
        "none": raw.count(None),
        "general_none_share": _general_share(items, embedder),
    }


GENERAL = [
    "The capital of France is Paris.",
    "Python lists are mutable, while tuples are not.",
    "Water boils at 100 degrees Celsius at sea level.",
    "To make pancakes, mix flour, eggs and milk, then fry the batter in a hot pan.",
    "The French Revolution began in 1789.",
    "A haiku has three lines of five, seven and five syllables.",
]


def _general_share(items: list[Any], embedder: Any) -> float:
    """General-knowledge replies against the (off-topic) contexts of the set: the share scored None, not flagged."""
    from assistant.checks import grounding

    contexts = list({tuple(i.context): i.context for i in items}.values())
    results = [grounding.ground(g, c, embedder=embedder).score for g in GENERAL for c in contexts]
    return round(results.count(None) / len(results), 3)


def _best_threshold(scores: list[float], labels: list[int]) -> float:
    """The cut that maximises accuracy (a fair operating point for the baseline, chosen on the data itself)."""
    candidates = sorted(set(scores))
    best = max(candidates, key=lambda t: sum((s < t) == (y == 0) for s, y in zip(scores, labels, strict=True)))
    return round(best, 4)


def latency(embedder: Any, seed: int = REPORT_SEED) -> dict[str, Any]:
    from assistant.checks import grounding
    from bench.check_grounding_data import build

    items = build(seed)
    cases: list[tuple[str, list[str]]] = []
    for at in range(0, len(items) - 8, 8):
        reply = ""
        for item in items[at : at + 8]:
            if len(reply) + len(item.answer) > 520:
                break
            reply = f"{reply} {item.answer}".strip()
        cases.append((reply[:500], items[at].context))
    grounding.ground(*cases[0], embedder=embedder)  # warm-up
    times: list[float] = []
    cpu: list[float] = []  # the embedder runs on the calling thread: CPU time is what a quiet machine would show
    for rep in range(LATENCY_REPS):
        text, sources = cases[rep % len(cases)]
        grounding.clear_caches()
        started, cpu_started = time.perf_counter(), time.process_time()
        grounding.ground(text, sources, embedder=embedder)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    times.sort()
    # `assistant check` hands the detector 64 lines at a time: ground_many embeds their sentences together.
    pairs = [(i.answer, i.context) for i in items]
    grounding.clear_caches()
    started = time.perf_counter()
    for at in range(0, len(pairs), 64):
        grounding.ground_many(pairs[at : at + 64], embedder=embedder)
    batch_s = time.perf_counter() - started
    return {
        "batch_per_s": round(len(pairs) / batch_s, 1),
        "reply_chars": round(statistics.mean(len(t) for t, _ in cases)),
        "context_chars": round(statistics.mean(sum(map(len, s)) for _, s in cases)),
        "ms_median": round(statistics.median(times), 2),
        "ms_p95": round(times[int(0.95 * (len(times) - 1))], 2),
        "cpu_ms_median": round(statistics.median(cpu), 2),
    }


def run() -> dict[str, Any]:
    embedder = _embedder()
    log(f"  grounding: evaluation set, seed {REPORT_SEED}")
    result = evaluate(REPORT_SEED, embedder)
    log("  grounding: latency")
    result["latency"] = latency(embedder)
    return result


def rows(result: dict[str, Any]) -> list[Row]:
    lat = result["latency"]
    return [
        Row(
            "grounding",
            "ROC AUC (grounded vs not)",
            result["auroc"],
            result["auroc_lexical"],
            "",
            "diff",
            target=">= 0.95",
            met=result["auroc"] >= 0.95,
            note=f"{result['items']} items, seed {result['seed']} (tuned on seed {TUNE_SEED}); baseline: word overlap",
        ),
        Row(
            "grounding",
            "flag precision",
            result["precision"],
            result["precision_lexical"],
            "",
            "diff",
            note=f"threshold {result['threshold']}; baseline at its best cut {result['lexical_threshold']}",
        ),
        Row("grounding", "flag recall", result["recall"], result["recall_lexical"], "", "diff"),
        Row(
            "grounding",
            "general knowledge, off-topic sources: None",
            result["general_none_share"],
            None,
            "",
            "diff",
            note="share of general-knowledge replies scored None (nothing to check against) rather than flagged",
        ),
        Row(
            "grounding",
            "latency per 500-char reply (ms)",
            lat["ms_median"],
            None,
            "ms",
            "diff",
            target="<= 50",
            met=lat["ms_median"] <= 50,
            note=f"median after warm-up (CPU time {lat['cpu_ms_median']} ms), p95 {lat['ms_p95']} ms; "
            f"context ~{lat['context_chars']} chars, vector and context caches cleared each call; "
            f"in batches of 64 short answers: {lat['batch_per_s']} answers/s",
        ),
    ]


def tune() -> None:
    """Grid over the weights on the tuning seed: AUROC and the most accurate threshold for each."""
    from assistant.checks import grounding

    embedder = _embedder()
    from bench.check_grounding_data import build

    items = build(TUNE_SEED)
    labels = [i.label for i in items]
    results = []
    for floor in (0.25, 0.35, 0.45):
        for weight in (0.4, 0.6, 0.8):
            for penalty in (0.0, 0.15, 0.3):
                grounding.SIM_FLOOR, grounding.SIM_WEIGHT, grounding.USER_CLAIM_PENALTY = floor, weight, penalty
                scores = [grounding.ground(i.answer, i.context, embedder=embedder).score or 0.0 for i in items]
                cut = _best_threshold(scores, labels)
                acc = statistics.mean((s < cut) == (y == 0) for s, y in zip(scores, labels, strict=True))
                results.append((auroc(scores, labels), acc, cut, floor, weight, penalty))
    for line in sorted(results, reverse=True)[:10]:
        print("auroc {:.4f}  acc {:.3f}  cut {:.3f}  floor {:.2f}  weight {:.1f}  penalty {:.2f}".format(*line))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.check_grounding")
    parser.add_argument("--tune", action="store_true", help="grid search on the tuning seed")
    if parser.parse_args().tune:
        tune()
    else:
        import json

        print(json.dumps(run(), indent=2))
