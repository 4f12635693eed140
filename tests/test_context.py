"""Context management: history that fits, trimmed over-long input, templates that need alternation."""

from __future__ import annotations

from assistant.context import normalise, plan_prompt, reply_reserve
from tests.fakes import FakeBackend


def turns(n: int, size: int = 40) -> list[dict[str, str]]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} " + "x" * size}
        for i in range(n)
    ]


def test_everything_fits_in_a_roomy_window() -> None:
    backend = FakeBackend(n_ctx=4096)
    plan = plan_prompt(backend, "be nice", turns(4), "hello", max_tokens=100)
    assert plan.history_used == 4 and plan.history_dropped == 0 and plan.notice is None
    assert plan.messages[0] == {"role": "system", "content": "be nice"}
    assert plan.messages[-1] == {"role": "user", "content": "hello"}
    assert plan.prompt_tokens == backend.count_tokens(plan.prompt)


def test_old_history_is_dropped_to_fit_and_said() -> None:
    backend = FakeBackend(n_ctx=512)
    history = turns(60)
    plan = plan_prompt(backend, "sys", history, "latest question", max_tokens=128)
    assert plan.prompt_tokens <= 512 - reply_reserve(512, 128)
    assert 0 < plan.history_used < 60
    assert plan.history_dropped == 60 - plan.history_used
    assert "did not fit" in (plan.notice or "")
    # the most recent turns are the ones kept, and the kept part opens with the user
    assert plan.messages[-2]["content"] == history[-1]["content"]
    assert plan.messages[1]["role"] == "user"


def test_an_over_long_message_is_trimmed_keeping_start_and_end() -> None:
    backend = FakeBackend(n_ctx=1024)
    text = "START " + "lorem ipsum " * 20_000 + " END"
    plan = plan_prompt(backend, "sys", [], text, max_tokens=256)
    assert plan.user_trimmed
    assert plan.prompt_tokens <= 1024 - 256
    sent = plan.messages[-1]["content"]
    assert sent.startswith("START") and sent.endswith("END")
    assert "characters omitted" in sent
    assert "longer than the model's 1,024-token context" in (plan.notice or "")


def test_normalise_merges_and_drops_for_strict_templates() -> None:
    history = [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "  "},
        {"role": "assistant", "content": "c"},
        {"role": "system", "content": "ignored"},
    ]
    assert normalise(history) == [{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "c"}]


def test_an_unanswered_user_turn_is_merged_with_the_new_one() -> None:
    backend = FakeBackend(n_ctx=4096)
    history = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "lost"},
    ]
    plan = plan_prompt(backend, "", history, "again", max_tokens=64)
    roles = [m["role"] for m in plan.messages]
    assert roles == ["user", "assistant", "user"]
    assert plan.messages[-1]["content"] == "lost\n\nagain"
