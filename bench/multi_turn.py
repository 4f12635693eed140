"""One conversation of ten short turns, memory on vs off, in one process: what each turn really reads.

llama.cpp keeps the tokens it has already read (the KV cache) and reuses the longest common prefix of the next
prompt, so a turn should read only what is new: its message, and with memory on the snippets new to the
conversation. A prompt whose start changes every turn (say, a system prompt that carries per-turn recall) is read
whole instead. For each turn this part records the prompt's tokens, the tokens llama.cpp actually had to read (the
prompt minus the prefix it had cached, computed the way ``Llama.generate`` does), the time to first token as the
assistant measures it (``ttft_ms``: prompt reading included) and from the moment the message was sent
(``send_to_first_ms``: storing, recall and planning included).

Same process, same backend, same prompts for both sides; a few earlier conversations (the recall part's synthetic
user) are imported and indexed first so memory has something to recall, and half the turns ask about them, so what
is recalled changes from turn to turn. Default settings, 48-token replies, a fixed seed.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench import SEED, CpuWindow, Row, log, temp_home

TURNS = 10
MAX_TOKENS = 48
EARLIER_SESSIONS = 40  # imported conversations (about 330 messages) with the synthetic user's facts
LATE = slice(5, 10)  # turns 6-10: the steady state the target is about
SMALL_TALK = [
    "Hi! I have a free afternoon today.",
    "Can you suggest something relaxing to do at home?",
    "That sounds nice. What should I cook for dinner tonight?",
    "Thanks. Any tips for sleeping better?",
    "Great, thank you for the help today.",
]


def prompts(questions: list[str]) -> list[str]:
    """Ten turns: small talk and questions about earlier conversations, interleaved."""
    out: list[str] = []
    for i in range(TURNS):
        out.append(SMALL_TALK[i // 2] if i % 2 == 0 else questions[i // 2])
    return out


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def tokens_read(backend: Any, prompt: str) -> tuple[int, int]:
    """(prompt tokens, tokens llama.cpp must read): ``Llama.generate``'s prefix reuse, replayed without running."""
    llm = backend.llm
    tokens = list(backend.tokenize_prompt(prompt))
    cached = list(llm.input_ids[: llm.n_tokens])
    prefix = common_prefix(cached, tokens)
    if prefix == len(tokens):  # all cached: llama.cpp replays the last token for fresh logits
        prefix -= 1
    return len(tokens), len(tokens) - max(prefix, 0)


def conversation(session: Any, texts: list[str]) -> tuple[list[dict[str, Any]], int]:
    """Ten turns of one new conversation on a model whose cache starts empty."""
    backend = session.load()
    backend.llm.reset()
    conversation_id: int | None = None
    turns: list[dict[str, Any]] = []
    for number, text in enumerate(texts, 1):
        window = CpuWindow()
        sent = time.perf_counter()
        turn = session.start_turn(text, conversation_id)
        prompt_tokens, read = tokens_read(backend, turn.plan.prompt)
        first: float | None = None
        for chunk in turn.stream():
            if first is None and chunk.text:
                first = time.perf_counter()
        result = turn.result
        assert result is not None
        conversation_id = result.conversation_id
        turns.append(
            {
                "turn": number,
                "prompt_tokens": prompt_tokens,
                "tokens_read": read,
                "ttft_ms": result.ttft_ms,
                "send_to_first_ms": round((first - sent) * 1000, 1) if first else None,
                "completion_tokens": result.completion_tokens,
                "recalled": len(result.memories),
                "others_cores": window.stop()["others_cores"],
            }
        )
    assert conversation_id is not None
    return turns, conversation_id


def run(reps: int = 1) -> dict[str, Any]:
    """``reps`` conversations per side, alternating off/on (ABBA), on one loaded model."""
    from assistant.config import Settings
    from assistant.session import Session, open_memory
    from bench.recall_data import generate
    from storage.db import open_store

    result: dict[str, Any] = {"turns": TURNS, "max_tokens": MAX_TOKENS, "earlier_sessions": EARLIER_SESSIONS}
    with temp_home() as home:
        store = open_store(home)
        dataset = generate(sessions=EARLIER_SESSIONS)
        store.import_conversations(dataset.conversations)
        settings = Settings(max_tokens=MAX_TOKENS, seed=SEED, memory=True)
        memory = open_memory(store, home, settings)
        started = time.perf_counter()
        indexed = memory.index_pending()
        log(f"  imported and indexed {indexed} earlier messages in {time.perf_counter() - started:.1f} s")
        texts = prompts([q.text for q in dataset.questions])
        result["prompts"] = texts

        backend: Any = None

        def shared(*_args: Any, **_kwargs: Any) -> Any:
            return backend

        first = Session(store, settings, home=home, use_memory=False, background_index=False)
        backend = first.load()
        sides: dict[str, list[list[dict[str, Any]]]] = {"off": [], "on": []}
        order = [side for rep in range(reps) for side in (("off", "on") if rep % 2 == 0 else ("on", "off"))]
        for side in order:
            session = Session(
                store,
                settings,
                home=home,
                loader=shared,
                memory=memory if side == "on" else None,
                use_memory=side == "on",
                background_index=False,
            )
            if side == "on":
                session.wait_for_memory()
            turns, conversation_id = conversation(session, texts)
            # Forgotten, so the next conversation recalls what this one did (word matches would find it).
            store.delete_conversation(conversation_id)
            sides[side].append(turns)
            reads = " ".join(str(t["tokens_read"]) for t in turns)
            log(f"  memory {side:3}: tokens read per turn {reads}")
            log(f"  memory {side:3}: ttft ms per turn {' '.join(str(t['ttft_ms']) for t in turns)}")
        backend.close()
        memory.close()
        store.close()
    result["sides"] = sides
    result["summary"] = summarise(sides)
    return result


def _median_late(runs: list[list[dict[str, Any]]], key: str) -> float | None:
    values = [t[key] for turns in runs for t in turns[LATE] if t[key] is not None]
    return round(statistics.median(values), 1) if values else None


def summarise(sides: dict[str, list[list[dict[str, Any]]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side, runs in sides.items():
        per_turn = []
        for index in range(TURNS):
            at = [turns[index] for turns in runs]
            per_turn.append(
                {
                    key: round(statistics.median(t[key] for t in at), 1)
                    for key in ("prompt_tokens", "tokens_read", "ttft_ms", "send_to_first_ms", "recalled")
                    if all(t[key] is not None for t in at)
                }
            )
        out[side] = {
            "per_turn": per_turn,
            "late_tokens_read": _median_late(runs, "tokens_read"),
            "late_ttft_ms": _median_late(runs, "ttft_ms"),
            "late_send_to_first_ms": _median_late(runs, "send_to_first_ms"),
        }
    on, off = out["on"], out["off"]
    ratio = on["late_ttft_ms"] / off["late_ttft_ms"] if on["late_ttft_ms"] and off["late_ttft_ms"] else None
    out["late_ttft_ratio"] = round(ratio, 2) if ratio else None
    # What turns 6-10 cost in all (the target's reading): the sum of their times to first token, on over off.
    sums = {side: sum(t["ttft_ms"] or 0 for turns in runs for t in turns[LATE]) for side, runs in sides.items()}
    out["late_ttft_sum_ratio"] = round(sums["on"] / sums["off"], 2) if sums["off"] else None
    out["late_ttft_sum_ms"] = {side: round(total / max(1, len(sides[side])), 1) for side, total in sums.items()}
    reads = {side: sum(t["tokens_read"] for turns in runs for t in turns[LATE]) for side, runs in sides.items()}
    out["late_tokens_read_sum_ratio"] = round(reads["on"] / reads["off"], 2) if reads["off"] else None
    return out


def rows(result: dict[str, Any]) -> list[Row]:
    summary = result["summary"]
    on, off = summary["on"], summary["off"]
    ratio = summary["late_ttft_sum_ratio"]
    return [
        Row(
            "multi-turn",
            "tokens read per turn, turns 6-10: memory on vs off",
            on["late_tokens_read"],
            off["late_tokens_read"],
            "tok",
            "ratio",
            note=f"all of turns 6-10, on/off: {summary['late_tokens_read_sum_ratio']}x; per turn, on: "
            + " ".join(str(t.get("tokens_read")) for t in on["per_turn"])
            + "; off: "
            + " ".join(str(t.get("tokens_read")) for t in off["per_turn"]),
        ),
        Row(
            "multi-turn",
            "time to first token ms, turns 6-10 summed: memory on vs off",
            summary["late_ttft_sum_ms"]["on"],
            summary["late_ttft_sum_ms"]["off"],
            "ms",
            "ratio",
            "<= 300%",
            ratio is not None and ratio <= 3.0,
            note=f"per turn (median): on {on['late_ttft_ms']} ms, off {off['late_ttft_ms']} ms "
            f"({summary['late_ttft_ratio']}x; a turn that recalls a new snippet reads it: ~70 tokens against ~20); "
            f"from sending, recall included (median): on {on['late_send_to_first_ms']} ms, "
            f"off {off['late_send_to_first_ms']} ms",
        ),
    ]


if __name__ == "__main__":  # a quick look without the whole bench: python -m bench.multi_turn
    import json
    import sys

    outcome = run(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    print(json.dumps(outcome["summary"], indent=2))
    for row in rows(outcome):
        print(row.metric, row.assistant, row.baseline, row.comparison(), row.note)
    Path("/tmp/multi_turn_last.json").write_text(json.dumps(outcome, indent=2))
