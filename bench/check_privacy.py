"""Privacy checker: per-type precision and recall on the labelled set (bench/check_privacy_data.py), beside presidio's
pattern recognizers alone in the same run, and latency per 500-character text after warm-up.

A found span counts when it overlaps a labelled span of the same type. For the secrets' summary line any secret type
matches any labelled secret (all become "[secret]", so calling a Stripe key a token costs nothing); per-type lines
are strict. "Structured PII" is every personal-data type but street addresses, whose patterns are partial by nature.
The baseline is presidio's pattern recognizers (the same set, its phone recognizer added) with their own scores at
0.4 or above (what presidio's phone recognizer gives every match): none of our validators, context rule, phones,
addresses or secrets.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bench import Row, log

STRUCTURED = ("email", "phone", "card", "iban", "ssn", "national_id", "ip")
SECRETS = ("api_key", "token", "password", "private_key")
TYPES = (*STRUCTURED, "address", *SECRETS)
Span = tuple[int, int, str]


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(items: list[Any], detect: Callable[[str], list[Span]]) -> dict[str, dict[str, float | int]]:
    """True/false positives and misses per type, plus the "structured" and "secrets" summaries."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
    for item in items:
        found = detect(item.text)
        gold = [s for s in item.spans if s[2]]
        for group, members in (("structured", STRUCTURED), ("secrets", SECRETS)):
            g = [s for s in gold if s[2] in members]
            f = [s for s in found if s[2] in members]
            counts[group]["tp"] += sum(any(_overlaps(x, y) for y in f) for x in g)
            counts[group]["fn"] += sum(not any(_overlaps(x, y) for y in f) for x in g)
            counts[group]["fp"] += sum(not any(_overlaps(y, x) for x in g) for y in f)
        for kind in TYPES:
            g = [s for s in gold if s[2] == kind]
            f = [s for s in found if s[2] == kind]
            counts[kind]["tp"] += sum(any(_overlaps(x, y) for y in f) for x in g)
            counts[kind]["fn"] += sum(not any(_overlaps(x, y) for y in f) for x in g)
            counts[kind]["fp"] += sum(not any(_overlaps(y, x) for x in g) for y in f)
    out: dict[str, dict[str, float | int]] = {}
    for kind, c in counts.items():
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None
        out[kind] = {**c, "precision": _round(precision), "recall": _round(recall)}
    return out


def _round(value: float | None) -> Any:
    return None if value is None else round(value, 3)


def errors(items: list[Any], detect: Callable[[str], list[Span]], limit: int = 20) -> list[str]:
    """The first misses and false alarms, for reading (never the whole set)."""
    out = []
    for item in items:
        found = detect(item.text)
        gold = [s for s in item.spans if s[2]]
        for s in gold:
            if not any(_overlaps(s, f) and f[2] == s[2] for f in found):
                out.append(f"missed {s[2]} {item.text[s[0] : s[1]]!r} in {item.text[:80]!r}")
        for f in found:
            if not any(_overlaps(s, f) and f[2] == s[2] for s in gold):
                out.append(f"false {f[2]} {item.text[f[0] : f[1]]!r} in {item.text[:80]!r}")
    return out[:limit]


def latency_texts(items: list[Any], n: int = 40) -> list[str]:
    """500-character texts made of consecutive items (PII, secrets and prose mixed), as a reply would be."""
    joined = " ".join(item.text for item in items)
    step = max(1, (len(joined) - 500) // n)
    return [joined[i : i + 500] for i in range(0, step * n, step)]


def run(reps: int = 3) -> dict[str, Any]:
    from assistant.checks.privacy import find_pii, raw_presidio
    from bench.check_privacy_data import build

    items = build(per_type=20)
    started = time.perf_counter()
    find_pii("warm-up: ana@example.com, +44 20 7946 0958")
    first_call_s = time.perf_counter() - started

    def ours(text: str) -> list[Span]:
        return [(f.start, f.end, f.type) for f in find_pii(text)]

    def baseline(text: str) -> list[Span]:
        return [(f.start, f.end, f.type) for f in raw_presidio(text)]

    result: dict[str, Any] = {"items": len(items), "first_call_s": round(first_call_s, 2)}
    result["assistant"], result["baseline"] = score(items, ours), score(items, baseline)
    result["errors"] = errors(items, ours)
    for line in result["errors"]:
        log(f"  {line}")
    texts = latency_texts(items)
    timings: dict[str, list[float]] = {"assistant": [], "baseline": []}
    for _ in range(reps):  # alternate sides, so a busy machine slows both alike
        for side, detect in (("assistant", ours), ("baseline", baseline)):
            t = time.perf_counter()
            for text in texts:
                detect(text)
            timings[side].append((time.perf_counter() - t) * 1000 / len(texts))
    result["latency_ms"] = {side: round(statistics.median(v), 2) for side, v in timings.items()}
    result["latency_spread_ms"] = {side: [round(min(v), 2), round(max(v), 2)] for side, v in timings.items()}
    return result


def rows(result: dict[str, Any]) -> list[Row]:
    out = []
    ours, base = result["assistant"], result["baseline"]
    for kind in ("structured", "secrets", *TYPES):
        if kind not in ours:
            continue
        targeted = kind in ("structured", "secrets")
        for metric in ("recall", "precision"):
            a, b = ours[kind][metric], base.get(kind, {}).get(metric)
            met = (a is not None and a >= 0.95) if targeted else None
            out.append(Row("privacy", f"{kind} {metric}", a, b, "", "diff", ">= 0.95" if targeted else "", met))
    latency = result["latency_ms"]
    out.append(
        Row(
            "privacy",
            "ms per 500 chars",
            latency["assistant"],
            latency["baseline"],
            "ms",
            "ratio",
            "<= 20",
            latency["assistant"] <= 20,
            note=f"{result['items']} labelled items; first call {result['first_call_s']} s",
        )
    )
    return out
