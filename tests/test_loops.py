"""Replies that repeat themselves: the detector on its own, then the real model with and without the guards."""

from __future__ import annotations

import pytest

from assistant.loops import LoopDetector, degenerate, repeated_ngram, repeated_share
from assistant.runtime.base import Backend, GenerationParams

HAIKU = "My sister Noor has a dachshund called Pepperoni. Write a haiku about her."

# Replies of the bundled model before the repeat penalty (temperature 0.3 and 0), and ordinary long replies.
LOOPED = [
    "Konnichiwa Noor, " * 40,
    "In the heart of the desert, noor's dachshund pepperoni\nA loyal companion, noor's dachshund pepperoni\n"
    "A dachshund, noor's dachshund pepperoni\nA loyal companion, noor's dachshund pepperoni\n" * 3,
    "1. A family vacation to the beach.\n2. A family vacation to the city.\n3. A family vacation to the mountains.\n"
    "4. A family vacation to the beach.\n5. A family vacation to the city.\n6. A family vacation to the mountains.\n"
    "7. A family vacation to the beach.\n8. A family vacation to the city.\n",
    "a warm day, " * 30,
    "ha" * 300,
]
NORMAL = [
    "Here is a simple soup. Chop two leeks and three potatoes. Melt butter in a pot, add the leeks and cook them "
    "gently for five minutes. Add the potatoes and a litre of stock, bring it to the boil, then simmer for twenty "
    "minutes. Blend until smooth, season with salt and pepper, and serve with bread. If you like it richer, stir "
    "in a spoon of cream at the end. It keeps for three days in the fridge and freezes well.",
    "1. Build a blanket fort.\n2. Bake cookies together.\n3. Paint with watercolours.\n4. Play a board game.\n"
    "5. Make paper boats and race them in the bath.\n6. Read a story aloud.\n7. Do a treasure hunt indoors.\n"
    "8. Have a dance party.\n9. Build a marble run.\n10. Watch a film with popcorn.",
    "Step 1: open the settings. Step 2: choose the network. Step 3: enter the password. Step 4: press connect. "
    "If it fails, restart the router and try again from step 1.",
    "| name | age |\n|------|-----|\n| Ann | 31 |\n| Bob | 45 |\n" + "-" * 200,
]


def stream_into(detector: LoopDetector, text: str, size: int = 3) -> int | None:
    """Feed ``text`` in small pieces, as tokens arrive; the offset where the detector fired, or None."""
    for start in range(0, len(text), size):
        if detector.feed(text[start : start + size]):
            return start + size
    return None


@pytest.mark.parametrize("text", LOOPED, ids=range(len(LOOPED)))
def test_a_looping_reply_is_caught_while_it_streams(text: str) -> None:
    detector = LoopDetector()
    at = stream_into(detector, text)
    assert at is not None and at < len(text)  # caught before the end, not after it
    assert detector.looping and detector.feed("more") is True  # and it stays caught
    assert degenerate(text)


@pytest.mark.parametrize("text", NORMAL, ids=range(len(NORMAL)))
def test_ordinary_replies_are_never_cut(text: str) -> None:
    detector = LoopDetector()
    assert stream_into(detector, text) is None
    assert not degenerate(text)


def test_a_loop_is_caught_early_whatever_the_piece_size() -> None:
    text = "Konnichiwa Noor, " * 40
    offsets = {size: stream_into(LoopDetector(), text, size) for size in (1, 2, 5, 17)}
    assert all(at is not None and at <= 20 * len("Konnichiwa Noor, ") for at in offsets.values()), offsets


def test_measures() -> None:
    assert repeated_ngram("a b c d a b c d a b c d a b c d") == (("a", "b", "c", "d"), 4)
    assert repeated_ngram("too short") == ((), 0)
    assert repeated_share("one two three four five six") == 0.0
    assert repeated_share("x y z w " * 10) > 0.8
    assert not degenerate("a b c d a b c d a b c d")  # three times is not yet degenerate
    assert degenerate("a b c d a b c d a b c d a b c d")


RAINY = "List ten ideas for a rainy afternoon with kids."  # runs to the token limit repeating its list at temperature 0


def generate(backend: Backend, request: str, **params: object) -> tuple[str, str | None]:
    from assistant.config import DEFAULT_SYSTEM_PROMPT

    prompt = backend.format_chat(
        [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": request}]
    )
    options = GenerationParams(max_tokens=200, temperature=0, seed=42, **params)  # type: ignore[arg-type]
    chunks = list(backend.stream(prompt, options))
    return "".join(c.text for c in chunks), chunks[-1].finish_reason


@pytest.mark.parametrize("request_", [HAIKU, RAINY])
def test_real_model_loops_without_the_guards(real_backend: Backend, request_: str) -> None:
    # Issue 6's prompt and another: with no repeat penalty, the bundled model repeats itself.
    text, _ = generate(real_backend, request_, repeat_penalty=1.0, cut_loops=False)
    assert degenerate(text)


@pytest.mark.parametrize("request_", [HAIKU, RAINY])
def test_default_sampling_does_not_loop(real_backend: Backend, request_: str) -> None:
    text, finish = generate(real_backend, request_)  # the defaults: repeat penalty 1.15, loops cut
    assert finish == "stop" and text.strip() and not degenerate(text)


def test_real_model_loop_is_cut(real_backend: Backend) -> None:
    full, finish = generate(real_backend, RAINY, repeat_penalty=1.0, cut_loops=False)
    assert finish == "length"
    text, finish = generate(real_backend, RAINY, repeat_penalty=1.0)
    assert finish == "loop"
    assert full.startswith(text) and len(text) < len(full)  # cut early: what was written stays, nothing more
