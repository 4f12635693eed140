"""A chat turn with the checker on against the same turn with it off: decode speed and the time after the last token.

Both sessions share one loaded model and, rep by rep, one prompt, whose message states facts (so the reply has
sources and grounding runs with the embedder, the costly case) and asks for a story (a long reply that names things),
about a new person each rep (so the checker meets a new reply and new sources, as in a chat). Runs
alternate (on, off, off, on, ...), the KV cache reset before each, temperature 0: both generate the same tokens.

* decode tok/s: tokens after the first piece over the time from the first piece that carried tokens to the last
  (the stream guard yields held-back pieces with their tokens and empty text, so they count where they came);
* after the last token: from the last piece that carried a token to the end of the turn (the rest of the reply
  released, the whole reply checked for privacy, the reply stored, grounding and its verdict stored). Its
  difference between checker on and off is what the checker adds; the target is <= 50 ms.

The embedder the checker uses is loaded by a first warm-up turn, as the memory's warm-up (or the first checked turn)
does in the app.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench import SEED, Row, load_average, log, median, spread, temp_home

PROMPT = (
    "My sister {name} lives in {city} and works as a {job}. She has a cat called {pet}. "
    "Write a short story about {name} and {pet} on a rainy day in her city."
)
# One set per rep (the on and off turns of a rep share it): the reply and its sources are new to the checker each
# time, as in a chat, so no cached sentence vector flatters the figure.
PEOPLE = [
    ("Ana", "Porto", "teacher at a primary school", "Miso"),
    ("Ingrid", "Bergen", "nurse at the city hospital", "Pepper"),
    ("Lucia", "Bologna", "baker", "Tofu"),
    ("Mei", "Taipei", "software engineer", "Dumpling"),
    ("Fatima", "Rabat", "architect", "Saffron"),
    ("Olga", "Tartu", "librarian", "Comet"),
    ("Grace", "Dublin", "vet", "Biscuit"),
    ("Aiko", "Sapporo", "pianist", "Yuzu"),
]


def _prompt(rep: int) -> str:
    name, city, job, pet = PEOPLE[rep % len(PEOPLE)]
    return PROMPT.format(name=name, city=city, job=job, pet=pet)


def _turn(session: Any, prompt: str) -> dict[str, Any]:
    session.load().llm.reset()
    started = time.perf_counter()
    turn = session.start_turn(prompt)
    first = last = None
    tokens = first_tokens = 0
    for chunk in turn.stream():
        if chunk.tokens:
            now = time.perf_counter()
            if first is None:
                first, first_tokens = now, chunk.tokens
            last = now
            tokens += chunk.tokens
    ended = time.perf_counter()
    assert turn.result is not None and first is not None and last is not None
    decode_s = last - first
    return {
        "ttft_ms": round((first - started) * 1000, 1),
        "decode_tps": round((tokens - first_tokens) / decode_s, 2) if decode_s > 0 else None,
        "tokens": tokens,
        "after_last_ms": round((ended - last) * 1000, 2),
        "badge": turn.result.badge,
        "reply": turn.result.reply,
    }


def run(reps: int = 6, max_tokens: int = 160) -> dict[str, Any]:
    from assistant.config import Settings
    from assistant.session import Session
    from storage.db import open_store

    with temp_home() as home:
        base = Settings(max_tokens=max_tokens, temperature=0.0, seed=SEED)
        store = open_store(home)
        on = Session(store, base, home=home, use_memory=False)
        off = Session(
            store, base.model_copy(update={"privacy": "off", "grounding": False}), home=home, use_memory=False
        )
        off._backend = on.load()  # one model for both
        warm = _prompt(len(PEOPLE) - 1)
        _turn(on, warm)  # warm-up: page cache, and the checker's embedder
        _turn(off, warm)
        runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
        load_before = load_average()
        for rep in range(reps):
            for kind in ("on", "off") if rep % 2 == 0 else ("off", "on"):
                r = _turn(on if kind == "on" else off, _prompt(rep))
                runs[kind].append(r)
                log(
                    f"  checked chat rep {rep + 1}/{reps} {kind:3} decode {r['decode_tps']} tok/s  "
                    f"after last token {r['after_last_ms']:6.1f} ms  badge {r['badge']}"
                )
        on.close()
        store.close()
    pairs = list(zip(runs["on"], runs["off"], strict=True))
    ratios = [a["decode_tps"] / b["decode_tps"] for a, b in pairs if a["decode_tps"] and b["decode_tps"]]
    extra = [a["after_last_ms"] - b["after_last_ms"] for a, b in pairs]
    return {
        "reps": reps,
        "max_tokens": max_tokens,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "same_tokens": all(a["tokens"] == b["tokens"] for a, b in zip(runs["on"], runs["off"], strict=True)),
        "badge": runs["on"][0]["badge"],
        "on": {k: median([r[k] for r in runs["on"] if r[k] is not None]) for k in ("decode_tps", "after_last_ms")},
        "off": {k: median([r[k] for r in runs["off"] if r[k] is not None]) for k in ("decode_tps", "after_last_ms")},
        "decode_ratio": round(statistics.median(ratios), 4) if ratios else None,
        "decode_ratio_range": spread(ratios),
        "after_last_extra_ms": median(extra),
        "after_last_extra_ms_range": spread(extra),
        "reply": runs["on"][0]["reply"][:200],
    }


def rows(result: dict[str, Any]) -> list[Row]:
    decode = Row(
        "checked",
        f"decode tok/s: chat turn checker on vs off ({result['max_tokens']} tok)",
        result["on"]["decode_tps"],
        result["off"]["decode_tps"],
        "tok/s",
        "ratio",
        ">= 95%",
        paired=result["decode_ratio"],
    )
    decode.met = decode.paired >= 0.95 if decode.paired is not None else None
    after = Row(
        "checked",
        "ms after the last token: checker on vs off (privacy + grounding + stored verdict)",
        result["on"]["after_last_ms"],
        result["off"]["after_last_ms"],
        "ms",
        "diff",
        "<= +50 ms",
        paired=result["after_last_extra_ms"],
        note=f"badge {result['badge']}",
    )
    after.met = after.paired <= 50 if after.paired is not None else None
    return [decode, after]
