"""Adapters in use: hot-swap on the real bundled model, the base model when an adapter cannot serve, the reply's
record of its adapter, `assistant adapters` and `chat --no-adapter` / `--json` through the real CLI.

The adapters are real GGUF LoRA files, written here with the ``gguf`` package in llama.cpp's format (small random
lora_a / lora_b for two layers of SmolLM2): llama.cpp loads and applies them like the learning job's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.adapters import AdapterSync, activate, adapter_for, base_model_of, forgotten_in, rollback
from assistant.config import Settings
from assistant.errors import InputError, ModelError
from assistant.models import resolve
from assistant.runtime.base import Backend, SupportsAdapters
from assistant.session import Session
from storage.adapters import add_adapter, get_adapter, set_active
from storage.db import Store
from storage.paths import adapters_dir
from tests.fakes import FakeBackend
from tests.test_cli_chat import run_cli

PROMPT = "Name three colours of the rainbow."
# SmolLM2-135M: hidden size 576, feed-forward 1536.
SHAPES = {"attn_q": (576, 576), "attn_v": (576, 192), "ffn_down": (1536, 576)}


def write_lora(
    path: Path,
    *,
    seed: int = 0,
    scale: float = 0.05,
    rank: int = 4,
    arch: str = "llama",
    layers: tuple[int, ...] = (0, 1),
) -> Path:
    """A valid llama.cpp GGUF LoRA adapter for SmolLM2 (random weights)."""
    import gguf

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(rank))
    for layer in layers:
        for name, (fan_in, fan_out) in SHAPES.items():
            a = (rng.standard_normal((rank, fan_in)) * scale).astype(np.float32)
            b = (rng.standard_normal((fan_out, rank)) * scale * 20).astype(np.float32)
            writer.add_tensor(f"blk.{layer}.{name}.weight.lora_a", a)
            writer.add_tensor(f"blk.{layer}.{name}.weight.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def smollm2_base(store: Store, home: Path) -> tuple[str, Path]:
    spec = resolve(store, "smollm2", home / "models")
    assert spec.path is not None
    return base_model_of("smollm2", spec.path), spec.path


def register(store: Store, home: Path, name: str = "v.gguf", *, base: str | None = None, seed: int = 0) -> int:
    """Write an adapter file into the data dir and register it (a candidate) for ``base`` (SmolLM2's by default)."""
    path = write_lora(adapters_dir(home) / name, seed=seed)
    return add_adapter(store, base or smollm2_base(store, home)[0], str(path), metrics={"probe_accuracy": 0.8})


@pytest.fixture
def backend(real_backend: Backend) -> Iterator[Backend]:
    """The shared real model, handed back to the next test without an adapter."""
    yield real_backend
    assert isinstance(real_backend, SupportsAdapters)
    real_backend.set_adapter(None)


class Counting:
    """A loader that hands out the shared model and counts the loads."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.loads = 0

    def __call__(self, spec: Any, settings: Any) -> Backend:
        self.loads += 1
        return self.backend


def session_on(
    store: Store, settings: Settings, home: Path, backend: Backend, **kwargs: Any
) -> tuple[Session, Counting]:
    loader = Counting(backend)
    return Session(store, settings, home=home, loader=loader, use_memory=False, **kwargs), loader


def reply(session: Session, text: str = PROMPT) -> tuple[str, str | None, Any]:
    """One turn in a new conversation (the same prompt each time): its text, notice and result."""
    turn = session.start_turn(text)
    for _ in turn.stream():
        pass
    assert turn.result is not None and turn.result.finish_reason in ("stop", "length")
    return turn.result.reply, turn.notice, turn.result


# -- hot-swap on the real model ----------------------------------------------------------------------------------------


def test_a_promoted_adapter_is_used_from_the_next_turn_and_rollback_restores_the_base_exactly(
    store: Store, settings: Settings, home: Path, backend: Backend
) -> None:
    session, loader = session_on(store, settings, home, backend)
    base_text, notice, first = reply(session)
    assert first.adapter is None and session.adapter_version is None and notice is None

    version = register(store, home)
    set_active(store, version)  # what the learning job's promotion does, while the chat is open
    with_text, notice, second = reply(session)
    assert with_text != base_text  # the adapter changes what the model writes...
    assert second.adapter == f"v{version}" and session.adapter_version == f"v{version}" and notice is None
    assert store.get_message(second.message_id).adapter == f"v{version}"  # ...and the reply records which one
    assert store.get_message(first.message_id).adapter is None

    before, now = rollback(store, smollm2_base(store, home)[0], home)
    assert before is not None and before.version == version and now is None
    again, _, third = reply(session)
    assert again == base_text  # temperature 0: the base model's very words
    assert third.adapter is None and store.get_message(third.message_id).adapter is None
    assert loader.loads == 1  # swapped on the loaded model, never reloaded


def test_two_adapters_swap_both_ways_and_the_same_adapter_gives_the_same_text(
    store: Store, settings: Settings, home: Path, backend: Backend
) -> None:
    session, loader = session_on(store, settings, home, backend)
    one = register(store, home, "one.gguf", seed=1)
    two = register(store, home, "two.gguf", seed=2)
    set_active(store, one)
    text_one, _, result = reply(session)
    set_active(store, two)
    text_two, _, result_two = reply(session)
    set_active(store, one)
    text_one_again, _, _ = reply(session)
    assert (result.adapter, result_two.adapter) == (f"v{one}", f"v{two}")
    assert text_one != text_two and text_one_again == text_one
    assert loader.loads == 1


def test_no_adapter_setting_and_session_flag_use_the_base_model(
    store: Store, settings: Settings, home: Path, backend: Backend
) -> None:
    set_active(store, register(store, home))
    plain, _ = session_on(store, settings, home, backend, use_adapter=False)
    base_text, _, result = reply(plain)
    assert result.adapter is None

    adapted, _ = session_on(store, settings, home, backend)
    with_text, _, result = reply(adapted)
    assert result.adapter is not None and with_text != base_text

    off = Settings(**{**settings.model_dump(), "adapter": False})
    from_setting, _ = session_on(store, off, home, backend)
    text, _, result = reply(from_setting)
    assert result.adapter is None and text == base_text


def test_a_truncated_adapter_is_one_sentence_and_the_base_model_keeps_answering(
    store: Store, settings: Settings, home: Path, backend: Backend
) -> None:
    session, _ = session_on(store, settings, home, backend)
    base_text, _, _ = reply(session)
    good = register(store, home, "good.gguf", seed=3)
    set_active(store, good)
    reply(session)  # the good adapter is on now

    broken = register(store, home, "broken.gguf", seed=4)
    path = Path(get_adapter(store, broken).path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    set_active(store, broken)

    text, notice, result = reply(session)
    assert notice is not None and notice.count(".") == 1 + notice.count(".gguf")  # one sentence
    assert f"Adapter v{broken} was not applied, so the base model answers" in notice and "truncated" in notice
    assert text == base_text and result.adapter is None  # not the good one either: the base model
    assert store.get_message(result.message_id).complete == 1

    text, notice, result = reply(session)  # said once; the base model goes on answering
    assert notice is None and text == base_text and result.adapter is None


def test_a_garbage_adapter_file_never_reaches_llama_cpp(
    store: Store, settings: Settings, home: Path, backend: Backend
) -> None:
    session, _ = session_on(store, settings, home, backend)
    path = adapters_dir(home) / "junk.gguf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + b"\x00" * 64)
    set_active(store, add_adapter(store, smollm2_base(store, home)[0], str(path)))
    text, notice, result = reply(session)  # a crash (segfault) here would end the test run
    assert notice is not None and "the base model answers" in notice and result.adapter is None and text


def test_an_adapter_of_another_base_model_is_never_applied(
    store: Store, settings: Settings, home: Path, backend: Backend
) -> None:
    base, model_path = smollm2_base(store, home)
    other = register(store, home, "other.gguf", base="smollm2@0123456789abcdef")  # same name, other weights
    set_active(store, other)
    assert adapter_for(store, "smollm2", model_path, home).path is None
    session, _ = session_on(store, settings, home, backend)
    _, notice, result = reply(session)
    assert result.adapter is None and notice is None
    with pytest.raises(InputError, match="trained on another model"):
        activate(store, other, base, home)


def test_a_swap_never_reuses_what_the_context_computed_with_other_weights(
    home: Path, store: Store, backend: Backend
) -> None:
    """llama.cpp keeps the last prompt's keys and values to reuse its prefix; they were computed with the weights
    of then, so after a swap the same prompt must be read anew: the swapped-in adapter writes what a model loaded
    with it from the start writes, and swapping it out gives the base model's words again."""
    from assistant.runtime.base import GenerationParams
    from assistant.runtime.llama import LlamaBackend

    assert isinstance(backend, SupportsAdapters)
    path = write_lora(home / "a.gguf", scale=0.3)  # strong: it changes the prompt's keys and values
    params = GenerationParams(max_tokens=24, temperature=0.0, seed=42)

    def text(model: Any) -> str:
        prompt = model.format_chat([{"role": "user", "content": PROMPT}])
        return "".join(chunk.text for chunk in model.stream(prompt, params))

    _, model_path = smollm2_base(store, home)
    loaded_with_it = LlamaBackend(model_path, name="smollm2", n_ctx=backend.n_ctx, threads=1, adapter=path)
    try:
        reference = text(loaded_with_it)
    finally:
        loaded_with_it.close()

    base = text(backend)
    backend.set_adapter(path, "v1")
    assert text(backend) == reference != base
    backend.set_adapter(None)
    assert text(backend) == base


def test_a_backend_built_with_an_adapter_swaps_it_off_and_closes_cleanly(home: Path, store: Store) -> None:
    from assistant.runtime.llama import LlamaBackend

    _, model_path = smollm2_base(store, home)
    path = write_lora(home / "a.gguf", seed=5)
    backend = LlamaBackend(model_path, name="smollm2", n_ctx=256, threads=1, adapter=path)
    assert backend.adapter_path == path
    assert backend.set_adapter(None) >= 0 and backend.adapter_path is None
    assert backend.set_adapter(path, "v9") >= 0 and backend.adapter_version == "v9"
    backend.close()  # the adapter llama.cpp still holds is freed with the model, once


def test_set_adapter_refuses_an_adapter_for_another_architecture(home: Path, store: Store, backend: Backend) -> None:
    assert isinstance(backend, SupportsAdapters)
    path = write_lora(home / "gemma.gguf", arch="gemma3")
    backend.set_adapter(write_lora(home / "ok.gguf"), "v1")
    with pytest.raises(ModelError, match="made for gemma3 models"):
        backend.set_adapter(path, "v2")
    assert backend.adapter_path is None and backend.adapter_version is None  # the base model serves


def test_a_runtime_without_adapters_is_left_alone(store: Store, home: Path) -> None:
    set_active(store, register(store, home))
    spec = resolve(store, "smollm2", home / "models")
    assert AdapterSync(store, home).apply(FakeBackend(), spec) is None


# -- the user's actions ----------------------------------------------------------------------------------------------


def test_an_adapter_trained_on_something_forgotten_is_never_activated_again(store: Store, home: Path) -> None:
    conversation = store.create_conversation()
    message = store.add_message(conversation, "user", "My dog is called Rex.")
    base, _ = smollm2_base(store, home)
    path = write_lora(adapters_dir(home) / "rex.gguf")
    old = add_adapter(store, base, str(path), items=[("message", message)], state="inactive")
    new = register(store, home, "new.gguf")
    set_active(store, new)
    store.delete_conversation(conversation)
    assert forgotten_in(store, old) == 1
    with pytest.raises(InputError, match="since forgotten"):
        activate(store, old, base, home)
    assert rollback(store, base, home)[1] is None  # past the forgotten one, to the base model


# -- the CLI ----------------------------------------------------------------------------------------------------------


def cli_json(*args: str, code: int = 0) -> Any:
    done = run_cli(*args)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout) if code == 0 else done.stderr


def test_adapters_cli_list_activate_rollback_remove(store: Store, home: Path) -> None:
    base, _ = smollm2_base(store, home)
    one = register(store, home, "one.gguf", seed=1)
    two = register(store, home, "two.gguf", seed=2)
    other = register(store, home, "other.gguf", base="gemma3-270m@00000000000000ff")

    listed = cli_json("adapters", "list", "--json")
    assert listed["base_model"] == base and listed["active"] is None
    assert [a["version"] for a in listed["adapters"]] == [other, two, one]
    assert [a["current_model"] for a in listed["adapters"]] == [False, True, True]
    assert listed["adapters"][1]["metrics"] == {"probe_accuracy": 0.8} and listed["adapters"][1]["file_present"]

    assert cli_json("adapters", "activate", f"v{one}", "--json")["active"] == f"v{one}"
    assert cli_json("adapters", "activate", str(two), "--json")["active"] == f"v{two}"
    assert (get_adapter(store, one).state, get_adapter(store, two).state) == ("inactive", "active")

    table = run_cli("adapters", "list")
    assert table.returncode == 0 and f"* v{two}" in table.stdout and "other model" in table.stdout
    assert "probe_accuracy 0.8" in table.stdout

    refused = cli_json("adapters", "activate", str(other), code=2)
    assert refused.count("Error:") == 1 and "trained on another model" in refused
    assert "There is no adapter 99" in cli_json("adapters", "activate", "99", code=5)
    assert "not an adapter version" in cli_json("adapters", "activate", "latest", code=2)

    back = cli_json("adapters", "rollback", "--json")
    assert back == {"from": f"v{two}", "active": f"v{one}", "adapter": get_adapter(store, one).to_dict()}
    done = run_cli("adapters", "rollback")
    assert done.returncode == 0 and f"Rolled back from v{one} to the base model" in done.stderr
    assert cli_json("adapters", "rollback", "--json") == {"from": None, "active": None, "adapter": None}

    removed = cli_json("adapters", "remove", f"v{two}", "--json")
    assert removed["removed"] == f"v{two}" and removed["was_active"] is False
    assert not Path(get_adapter(store, two).path).exists() and get_adapter(store, two).state == "removed"
    assert "was removed" in cli_json("adapters", "activate", str(two), code=2)

    set_active(store, one)
    assert "is the active one" in cli_json("adapters", "remove", str(one), code=2)
    assert Path(get_adapter(store, one).path).exists()
    forced = cli_json("adapters", "remove", str(one), "--force", "--json")
    assert forced["was_active"] is True and get_adapter(store, one).state == "removed"
    assert cli_json("adapters", "list", "--json")["active"] is None


def test_adapters_cli_with_no_adapters_says_so(home: Path) -> None:
    done = run_cli("adapters", "list")
    assert done.returncode == 0 and "No adapters yet" in done.stderr


def test_chat_json_names_the_adapter_and_no_adapter_uses_the_base_model(store: Store, home: Path) -> None:
    version = register(store, home)
    set_active(store, version)
    adapted = cli_json("chat", "--json", "--no-memory", PROMPT)
    plain = cli_json("chat", "--json", "--no-memory", "--no-adapter", PROMPT)
    assert adapted["adapter"] == f"v{version}" and plain["adapter"] is None
    assert adapted["reply"] != plain["reply"]
    assert store.get_message(adapted["message_id"]).adapter == f"v{version}"


async def test_the_tui_status_bar_shows_the_adapter_a_turn_used(
    store: Store, settings: Settings, home: Path, backend: Backend
) -> None:
    """A promoted adapter is picked up by the running TUI at its next turn, and the status bar says which."""
    from tests.test_tui import SIZE, send, settle
    from tui.app import AssistantApp

    session, loader = session_on(store, settings, home, backend)
    app = AssistantApp(session=session)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, PROMPT)
        await settle(pilot, app)
        assert app.main.status.adapter == "none"
        set_active(store, register(store, home))  # what `assistant learn` does when it promotes
        await send(pilot, app, PROMPT)
        await settle(pilot, app)
        reply = store.messages(app.main.conversation_id)[-1]  # type: ignore[arg-type]
        assert app.main.status.adapter == reply.adapter == session.adapter_version and reply.adapter
    assert loader.loads == 1  # swapped, never reloaded


def test_forgetting_turns_off_at_once_the_adapter_that_learned_it(store: Store, home: Path) -> None:
    """Until the next learning run trains one without it, no adapter that knew a forgotten item serves."""
    conversation = store.create_conversation()
    said = store.add_message(conversation, "user", "My dog is called Bramble.")
    fact = store.add_message(conversation, "assistant", "Noted.")
    base = smollm2_base(store, home)[0]
    path = write_lora(adapters_dir(home) / "v.gguf")
    version = add_adapter(store, base, str(path), items=[("message", said)], metrics={})
    set_active(store, version)
    other = store.create_conversation()
    kept = store.add_message(other, "user", "I live in Porto.")
    assert kept and fact

    done = run_cli("history", "delete", str(other), "--yes", "--json")  # nothing the adapter learned: it stays
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["adapters_off"] == []
    assert get_adapter(store, version).state == "active"

    done = run_cli("history", "delete", str(conversation), "--yes")
    assert done.returncode == 0, done.stderr
    assert "adapter v1 was trained on it and is now off" in done.stderr.replace("\n", " ")
    assert get_adapter(store, version).state == "inactive"
    with pytest.raises(InputError):
        activate(store, version, base, home)  # and it never comes back
