"""A fake backend with queued replies, for fast unit tests of orchestration only (never for capabilities)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from assistant.runtime.base import Chunk, GenerationParams


class FakeBackend:
    """Streams queued replies word by word; counts one token per four characters."""

    def __init__(self, replies: list[str] | None = None, n_ctx: int = 512, delay_s: float = 0.0) -> None:
        self.name = "fake"
        self.n_ctx = n_ctx
        self.replies = list(replies or ["Hello from the fake model."])
        self.delay_s = delay_s
        self.prompts: list[str] = []
        self.fail_after: int | None = None
        # When set, the stream waits on it after its first ``hold_after`` words: a reply that cannot end before the
        # test lets it (the checker's stream guard holds the last few words back, so a test that waits for text on
        # screen holds after more than those).
        self.hold: threading.Event | None = None
        self.hold_after = 1
        self.closed = False

    def count_tokens(self, text: str) -> int:
        return (len(text) + 3) // 4

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        body = "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)
        return body + "<assistant>"

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Chunk]:
        self.prompts.append(prompt)
        reply = self.replies.pop(0) if self.replies else "(no more replies)"
        started = time.perf_counter()
        words = reply.split(" ")
        for i, word in enumerate(words):
            if self.fail_after is not None and i >= self.fail_after:
                raise RuntimeError("the fake model broke")
            if self.delay_s:
                time.sleep(self.delay_s)
            text = word if i == 0 else " " + word
            last = i == len(words) - 1
            yield Chunk(text, 1, time.perf_counter() - started, "stop" if last else None)
            if self.hold is not None and i + 1 >= self.hold_after:
                self.hold.wait()

    def close(self) -> None:
        self.closed = True


def load(spec: object, settings: object, adapter: object, n_ctx: int) -> FakeBackend:
    """A runtime module's entry point (``assistant.runtime.registry``): lets tests register a second runtime."""
    return FakeBackend(n_ctx=n_ctx)
