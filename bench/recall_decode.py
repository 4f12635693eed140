"""Decode speed of a chat turn with memory on, against raw llama.cpp on the same prompt (the `recall` part's third
measurement): index idle, and while the background indexer has pending messages."""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Any

from bench import SEED, CpuWindow, log, median, model_path, spread
from bench.recall import DECODE_TEXT


def _turn(session: Any, text: str) -> tuple[Any, Any]:
    from bench.chat_speed import timed

    session.load().llm.reset()
    started = time.perf_counter()
    turn = session.start_turn(text)
    run = timed(((c.text, c.tokens) for c in turn.stream()), started)
    return run, turn


def decode(store: Any, home: Path, memory: Any, reps: int, max_tokens: int) -> dict[str, Any]:
    """Raw create_completion vs a Session turn with memory on (index idle / indexer busy), rotated order."""
    from assistant.config import Settings
    from assistant.session import Session
    from bench.chat_speed import load_raw, raw_completion
    from bench.recall_data import filler

    settings = Settings(max_tokens=max_tokens, temperature=0.0, seed=SEED, memory=True)
    threads = settings.effective_threads()
    session = Session(store, settings, home=home, memory=memory, background_index=True)
    session.load()
    llm = load_raw(model_path(home), settings.context_size, threads)
    rng = random.Random(SEED)

    def top_up(minimum: int = 300) -> int:
        """Enough pending messages to keep the indexer busy through a turn; then start it."""
        pending = memory.pending_count()
        if pending < minimum:
            store.import_conversations(filler(rng, minimum - pending))
        memory.start_indexer()
        time.sleep(0.3)  # the indexer picks the batch up and starts embedding
        return memory.pending_count()

    run, turn = _turn(session, DECODE_TEXT)  # warm-up: page cache, and the exact prompt the assistant renders
    prompt = turn.plan.prompt
    recalled = turn.result.memories if turn.result else []
    memory.forget_conversation(turn.conversation_id)  # later turns recall the same snippets: the same prompt
    memory.stop_indexer(wait=True)  # idle unless a run is about indexing (leftovers wait for the next such run)
    raw_completion(llm, prompt, 16)
    prompt_tokens = len(llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
    kinds = ["raw", "memory_idle", "memory_indexing"]
    runs: dict[str, list[Any]] = {k: [] for k in kinds}
    indexed_during: list[int] = []
    same_prompt = True
    for rep in range(reps):
        order = kinds[rep % 3 :] + kinds[: rep % 3]
        for kind in order:
            if kind == "raw":
                window = CpuWindow()
                r = raw_completion(llm, prompt, max_tokens)
            elif kind == "memory_idle":
                window = CpuWindow()
                r, turn = _turn(session, DECODE_TEXT)
            else:
                before = top_up()
                window = CpuWindow()
                r, turn = _turn(session, DECODE_TEXT)
                indexed_during.append(before - memory.pending_count())
                memory.stop_indexer(wait=True)
            r.others_cores = window.stop()["others_cores"]
            if kind != "raw":
                same_prompt = same_prompt and turn.plan.prompt == prompt
                memory.forget_conversation(turn.conversation_id)
            runs[kind].append(r)
            log(f"  decode rep {rep + 1}/{reps} {kind:16} ttft {r.ttft_ms:7.1f} ms  decode {r.decode_tps} tok/s")
    session.close()  # stops the indexer and closes the index (reopened lazily later)
    llm.close()

    def ratios(kind: str) -> list[float]:
        return [
            a.decode_tps / b.decode_tps
            for a, b in zip(runs[kind], runs["raw"], strict=True)
            if a.decode_tps and b.decode_tps
        ]

    return {
        "threads": threads,
        "embedder_threads": settings.embedder_threads,
        "max_tokens": max_tokens,
        "prompt_tokens": prompt_tokens,
        "recalled_snippets": len(recalled),
        "recalled_first": (recalled[0].get("text", "")[:100] if recalled else ""),
        "same_prompt_every_turn": same_prompt,
        "indexed_during_turn": indexed_during,
        **{
            kind: {
                "decode_tps": median([r.decode_tps for r in items if r.decode_tps]),
                "decode_tps_range": spread([r.decode_tps for r in items if r.decode_tps]),
                "ttft_ms": median([r.ttft_ms for r in items]),
                "others_cores": median([r.others_cores for r in items if r.others_cores is not None]),
            }
            for kind, items in runs.items()
        },
        "idle_ratio": round(statistics.median(ratios("memory_idle")), 4) if ratios("memory_idle") else None,
        "idle_ratio_range": spread(ratios("memory_idle")),
        "indexing_ratio": round(statistics.median(ratios("memory_indexing")), 4) if ratios("memory_indexing") else None,
        "indexing_ratio_range": spread(ratios("memory_indexing")),
    }
