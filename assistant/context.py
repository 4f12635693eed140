"""Context management: the system prompt plus as much recent history as fits the model's window.

The prompt is laid out so that what a conversation has already read stays its prefix: the system message first
(the system prompt and remembered facts), earlier turns next (each with the note of recalled snippets it was
given), the new message last (after its own note). llama.cpp then reads only the new turn. An over-long user
message is trimmed (its start and end kept) with a notice for the user; the full text stays stored. Nothing here
can fail on size: the worst case is a prompt of the system message and a trimmed request.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.memory_prompt import with_note
from assistant.runtime.base import Backend

# Tokens reserved per message for the template's role markers when estimating (checked by a real render after).
MESSAGE_OVERHEAD = 8
MIN_REPLY_TOKENS = 64
HISTORY_STEPS = 4  # history that outgrows the window is left out a quarter of the budget at a time


@dataclass(slots=True)
class PromptPlan:
    prompt: str
    prompt_tokens: int
    messages: list[dict[str, str]]
    history_used: int
    history_dropped: int
    user_trimmed: bool
    notice: str | None
    note: str = ""  # recalled snippets put before the new message ("" when none)


def normalise(history: list[dict[str, str]]) -> list[dict[str, str]]:
    """Drop empty turns and merge consecutive turns of one role, so strict templates (Gemma) accept them."""
    out: list[dict[str, str]] = []
    for msg in history:
        content = msg["content"].strip()
        if not content or msg["role"] not in ("user", "assistant"):
            continue
        if out and out[-1]["role"] == msg["role"]:
            out[-1] = {"role": msg["role"], "content": out[-1]["content"] + "\n\n" + content}
        else:
            out.append({"role": msg["role"], "content": content})
    return out


def reply_reserve(n_ctx: int, max_tokens: int) -> int:
    """Tokens kept free for the reply: max_tokens, but never more than half the window."""
    return max(MIN_REPLY_TOKENS, min(max_tokens, n_ctx // 2))


def trim_middle(backend: Backend, text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` tokens, keeping its start (2/3) and end (1/3)."""
    tokens = backend.count_tokens(text)
    if tokens <= limit:
        return text
    chars = int(len(text) * limit / max(tokens, 1) * 0.9)
    while True:
        head, tail = text[: chars * 2 // 3], text[len(text) - chars // 3 :] if chars >= 3 else ""
        omitted = len(text) - len(head) - len(tail)
        candidate = f"{head}\n\n[… {omitted:,} characters omitted …]\n\n{tail}"
        if backend.count_tokens(candidate) <= limit or chars < 16:
            return candidate
        chars = int(chars * 0.85)


def history_start(costs: list[int], free: int, budget: int) -> int:
    """Where the kept history starts: late enough to fit ``free`` tokens, and on a stable step.

    Dropping only the oldest message each turn would change the prompt's start on every turn once a conversation
    outgrows the window, and llama.cpp would read the whole prompt again every time. So history is left out in
    steps: it may only start at a message that opens a new quarter of the budget, counted from the start of the
    conversation. Those places do not move as the conversation grows, so the start stays put for several turns
    (the prompt is read whole once per step), at the price of up to a quarter of the budget left unused.
    """
    total = sum(costs)
    if total <= free:
        return 0
    step = max(1, budget // HISTORY_STEPS)
    needed = total - free  # tokens that must be left out, at least
    first_fit: int | None = None
    before = 0  # tokens of the messages before index i
    for i, cost in enumerate(costs):
        if before >= needed:
            first_fit = i if first_fit is None else first_fit
            if before // step != (before - costs[i - 1]) // step:
                return i
        before += cost
    return first_fit if first_fit is not None else len(costs)


def plan_prompt(
    backend: Backend,
    system: str,
    history: list[dict[str, str]],
    user_text: str,
    max_tokens: int,
    note: str = "",
) -> PromptPlan:
    """Fit system + history + the new message (after its ``note``) into the backend's context window.

    ``system`` already carries the facts; history messages carry their own notes (see ``memory_prompt``).
    """
    n_ctx = backend.n_ctx
    budget = n_ctx - reply_reserve(n_ctx, max_tokens)
    note = note.strip()
    user_text = user_text.strip()  # as history will hold it next turn (``normalise``), so the prefix matches
    system_msgs = [{"role": "system", "content": system}] if system.strip() else []
    notices: list[str] = []

    base_tokens = backend.count_tokens(backend.format_chat([*system_msgs, {"role": "user", "content": ""}]))
    note_tokens = backend.count_tokens(with_note(note, "")) if note else 0
    user_limit = max(16, budget - base_tokens - note_tokens)
    user_trimmed = False
    user_tokens = backend.count_tokens(user_text)
    if user_tokens > user_limit:
        user_text = trim_middle(backend, user_text, user_limit)
        user_trimmed = True
        notices.append(
            f"Your message ({user_tokens:,} tokens) is longer than the model's {n_ctx:,}-token context, "
            "so only its start and end were sent; the full text is stored."
        )
        user_tokens = backend.count_tokens(user_text)
    user_text = with_note(note, user_text)
    user_tokens += note_tokens

    history = normalise(history)
    start = history_start(
        [backend.count_tokens(m["content"]) + MESSAGE_OVERHEAD for m in history],
        budget - base_tokens - user_tokens,
        budget,
    )
    kept = history[start:]

    def render(past: list[dict[str, str]]) -> tuple[list[dict[str, str]], str, int]:
        msgs = [*system_msgs, *past, {"role": "user", "content": user_text}]
        if past and past[-1]["role"] == "user":  # a user turn left unanswered: merge it with the new one
            merged = {"role": "user", "content": past[-1]["content"] + "\n\n" + user_text}
            msgs = [*system_msgs, *past[:-1], merged]
        prompt = backend.format_chat(msgs)
        return msgs, prompt, backend.count_tokens(prompt)

    def opening_with_user(past: list[dict[str, str]]) -> list[dict[str, str]]:
        # Templates expect the conversation to open with the user.
        while past and past[0]["role"] != "user":
            past = past[1:]
        return past

    kept = opening_with_user(kept)
    messages, prompt, tokens = render(kept)
    while tokens > budget and kept:
        kept = opening_with_user(kept[1:])
        messages, prompt, tokens = render(kept)
    dropped = len(history) - len(kept)
    if dropped:
        notices.append(f"{dropped} earlier message(s) did not fit the context window and were left out.")
    return PromptPlan(
        prompt=prompt,
        prompt_tokens=tokens,
        messages=messages,
        history_used=len(kept),
        history_dropped=dropped,
        user_trimmed=user_trimmed,
        notice=" ".join(notices) or None,
        note=note,
    )
