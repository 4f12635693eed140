"""Stream guard (assistant/checks/stream.py): what masking while a reply streams costs, beside one privacy check of
the whole reply (the baseline: what the reply's end costs anyway).

Replies are fed in token-sized pieces (3-5 characters, seeded), as the model streams them. Three groups: everyday
replies with no trigger at all (the guard's own cost per piece), everyday replies with times, quantities, an address
or a key here and there ("typical"), and 500-character stretches of the privacy part's labelled set, personal data in
nearly every sentence ("dense"). Per reply: microseconds per feed, milliseconds spent detecting while streaming, how
many detections, and the characters held back after each piece (the delay a reader sees). At ~160 tokens/s a token
comes every ~6 ms, so a few microseconds per piece are nothing, and ~10 ms of detections per 500 characters (about
125 tokens, ~0.8 s of decode) is ~1 % of decode time.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from bench import Row, log

PLAIN = [
    "Rainy afternoons are perfect for slow cooking. Start a pot of soup with onions, carrots and celery, let it "
    "simmer while you read a chapter of a good novel, then add fresh herbs at the end. A warm drink and a blanket "
    "finish the picture. If you would like something sweeter, bake a simple apple crumble: it forgives every "
    "mistake and fills the kitchen with the smell of cinnamon. Tell me what you have in the fridge and I can "
    "suggest something that uses it up.",
    "That sounds like a stressful week. It might help to write down the three things that matter most and let the "
    "rest wait. Short walks between tasks clear the head better than another cup of coffee, and a fixed time to "
    "stop working in the evening protects your sleep. If your manager keeps adding work, it is fair to ask which of "
    "the current tasks should move back. You do not have to solve everything at once; pick one thing for today.",
    "Photosynthesis is how plants turn light into food. Their leaves hold chlorophyll, a green pigment that absorbs "
    "light and uses its energy to split water. The oxygen we breathe is what is left over. The plant combines the "
    "hydrogen with carbon dioxide from the air to build sugars, which feed its growth and are stored in roots, "
    "seeds and fruit. Almost every food chain on land starts with this quiet work happening in green leaves.",
]
TYPICAL = [
    "Here is a plan for Saturday. Leave at 8:30 so you reach the trailhead by 10, before the car park fills up. The "
    "loop is about 14 km with 600 m of climbing, so pack 2 litres of water, a sandwich and a warm layer. The café "
    "at the top closes at 16:00. If the weather turns, the shorter 6 km path along the lake is a good fallback, and "
    "the bus back to town leaves every 40 minutes from the main square.",
    "To set up the project, clone the repository and create a virtual environment:\n\npython -m venv .venv\n"
    "source .venv/bin/activate\npip install -r requirements.txt\n\nThen copy .env.example to .env and set "
    "DATABASE_URL=postgres://app:s3cretPass@localhost:5432/dev and API_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dc. "
    "Run the tests with pytest -q; all 42 should pass.",
    "I have noted your details: you can be reached at ana.silva@example.com or +44 20 7946 0958, and the parcel "
    "goes to 221B Baker Street, London. Your order should arrive within 3 to 5 working days. If you need to change "
    "the delivery address, reply before 18:00 tomorrow and I will update it for you. Is there anything else you "
    "would like me to add to the note for the courier?",
    "For a loaf of bread you need 500 g of strong flour, 7 g of dried yeast, 10 g of salt and 350 ml of warm water. "
    "Mix everything, knead for 10 minutes until smooth, then let it rise for about an hour. Shape it, let it rise "
    "again for 45 minutes, and bake at 220 °C for 30 to 35 minutes. It is done when it sounds hollow underneath. "
    "Let it cool for at least 20 minutes before slicing, or the crumb will be gummy.",
]


def dense_texts(n: int = 24) -> list[str]:
    from bench.check_privacy import latency_texts
    from bench.check_privacy_data import build

    return latency_texts(build(per_type=20), n)


def token_pieces(text: str, rng: random.Random) -> list[str]:
    out, at = [], 0
    while at < len(text):
        size = rng.randint(3, 5)
        out.append(text[at : at + size])
        at += size
    return out


def measure(text: str, rng: random.Random, user_inputs: list[str]) -> dict[str, Any]:
    """One reply streamed through a guard: time per feed, time detecting, detections, held characters."""
    from assistant.checks.privacy import find_pii
    from assistant.checks.stream import StreamGuard

    spent = [0.0]

    def detect(window: str) -> list[Any]:
        t = time.perf_counter()
        found = find_pii(window)
        spent[0] += time.perf_counter() - t
        return found

    pieces = token_pieces(text, rng)
    guard = StreamGuard(user_inputs, "redact", detect=detect)
    held: list[int] = []
    started = time.perf_counter()
    for piece in pieces:
        guard.feed(piece)
        held.append(guard.held)
    streamed_s = time.perf_counter() - started
    detect_s = spent[0]
    t = time.perf_counter()
    _, outcome = guard.finish()
    finish_s = time.perf_counter() - t
    return {
        "chars": len(text),
        "feeds": len(pieces),
        "us_per_feed": streamed_s * 1e6 / len(pieces),
        "us_per_feed_guard": (streamed_s - detect_s) * 1e6 / len(pieces),  # the guard itself, detections apart
        "detect_ms": detect_s * 1000,
        "detections": guard.detections,
        "finish_ms": finish_s * 1000,
        "held": held,
        "same": guard.shown == outcome.text,
        "diverged": guard.diverged,
    }


def baseline_ms(text: str, reps: int) -> float:
    from assistant.checks.privacy import find_pii

    times = []
    for _ in range(reps):
        t = time.perf_counter()
        find_pii(text)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def run(reps: int = 3) -> dict[str, Any]:
    from assistant.checks.privacy import find_pii

    find_pii("warm-up: ana@example.com, +44 20 7946 0958, password=hunter2")
    groups: dict[str, list[str]] = {"plain": PLAIN, "typical": TYPICAL, "dense": dense_texts()}
    user_inputs = ["My email is ana.silva@example.com."]
    result: dict[str, Any] = {}
    for name, texts in groups.items():
        rng = random.Random(8)
        runs: list[dict[str, Any]] = []
        for _ in range(reps):
            runs += [measure(text, rng, user_inputs) for text in texts]
        held = [h for r in runs for h in r["held"]]

        def per500(key: str, runs: list[dict[str, Any]] = runs) -> list[float]:
            return [r[key] * 500 / r["chars"] for r in runs]  # each reply scaled to 500 characters

        summary = {
            "replies": len(texts),
            "chars_mean": round(statistics.mean(len(t) for t in texts)),
            "us_per_feed": round(statistics.median(r["us_per_feed"] for r in runs), 2),
            "us_per_feed_guard": round(statistics.median(r["us_per_feed_guard"] for r in runs), 2),
            "detect_ms_per_500": round(statistics.median(per500("detect_ms")), 2),
            "detect_ms_per_500_max": round(max(per500("detect_ms")), 2),
            "detections_per_500": round(statistics.median(per500("detections")), 1),
            "finish_ms_per_500": round(statistics.median(per500("finish_ms")), 2),
            "baseline_ms_per_500": round(statistics.median(baseline_ms(t, reps) * 500 / len(t) for t in texts), 2),
            "held_median": statistics.median(held),
            "held_p95": sorted(held)[int(len(held) * 0.95)],
            "held_max": max(held),
            "same_as_stored": sum(r["same"] for r in runs) / len(runs),
            "diverged": sum(r["diverged"] for r in runs),
        }
        result[name] = summary
        log(f"  {name}: {summary}")
    return result


def rows(result: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    plain, typical, dense = result["plain"], result["typical"], result["dense"]
    out.append(
        Row(
            "stream",
            "µs per piece, no trigger",
            plain["us_per_feed"],
            None,
            "µs",
            "diff",
            "<= 5",
            plain["us_per_feed"] <= 5,
            note=f"held back median {plain['held_median']} chars, max {plain['held_max']}; no detection",
        )
    )
    for name, group in (("typical", typical), ("dense", dense)):
        out.append(
            Row(
                "stream",
                f"ms detecting per 500 chars, {name}",
                group["detect_ms_per_500"],
                group["baseline_ms_per_500"],
                "ms",
                "ratio",
                "<= 10",
                group["detect_ms_per_500"] <= 10,
                note=(
                    f"{group['detections_per_500']} detections per 500 chars (max {group['detect_ms_per_500_max']} "
                    f"ms); guard alone {group['us_per_feed_guard']} µs per piece; held back median "
                    f"{group['held_median']} chars, p95 {group['held_p95']}, max {group['held_max']}; "
                    f"baseline: one find_pii over the whole reply; finish {group['finish_ms_per_500']} ms"
                ),
            )
        )
    same = min(g["same_as_stored"] for g in (plain, typical, dense))
    out.append(Row("stream", "shown == stored (share of replies)", same, None, "", "diff", "1.0", same == 1.0))
    return out
