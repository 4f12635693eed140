"""Shared fixtures: every test gets its own private data dir; the real bundled model is loaded once."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import Settings, load_settings
from assistant.models import resolve
from assistant.runtime.base import Backend
from assistant.session import Session
from storage.db import Store, open_store
from storage.embedder import Embedder
from tests.fakes import FakeBackend


def pytest_configure(config: pytest.Config) -> None:
    """A suite started in the background by a non-interactive shell (`make test &`, nohup) inherits SIGINT ignored,
    and so would every CLI it starts: the Ctrl-C tests would then interrupt nothing. Run as a terminal would."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache dir for the run: the embedder's ONNX export (~20 s) is made once, not once per test."""
    return tmp_path_factory.mktemp("cache")


# onnxruntime sends no telemetry when it sees one of these (strings in its library), so CI would hide what a
# user's desktop does: every test runs as on a desktop, and the privacy tests see the real behaviour.
CI_MARKERS = (
    "CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL",
    "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER",
)  # fmt: skip


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> Path:
    """Isolate the data dir (and every ASSISTANT_* setting) in tmp_path."""
    for key in list(os.environ):
        if key.startswith("ASSISTANT_") or key in CI_MARKERS:
            monkeypatch.delenv(key)
    path = tmp_path / "home"
    monkeypatch.setenv("ASSISTANT_HOME", str(path))
    monkeypatch.setenv("ASSISTANT_SEED", "42")
    monkeypatch.setenv("ASSISTANT_TEMPERATURE", "0")
    monkeypatch.setenv("ASSISTANT_MAX_TOKENS", "48")  # short replies keep the real-model tests quick
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ASSISTANT_CACHE", str(shared_cache))
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home)


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    with open_store(home) as s:
        yield s


@pytest.fixture
def fake_backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def fake_session(store: Store, settings: Settings, home: Path, fake_backend: FakeBackend) -> Session:
    # Memory off: these sessions test the chat turn; the memory tests build theirs on the real Memory.
    return Session(store, settings, home=home, loader=lambda spec, s: fake_backend, use_memory=False)


class SharedBackend:
    """The session-wide real model, protected from being closed by one test."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def close(self) -> None:
        pass


@pytest.fixture(scope="session")
def real_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """The real bundled SmolLM2, loaded once for the whole run."""
    from assistant.runtime.llama import LlamaBackend

    scratch = tmp_path_factory.mktemp("model-home")
    with open_store(scratch) as s:
        spec = resolve(s, "smollm2", scratch / "models")
    assert spec.path is not None
    backend = LlamaBackend(spec.path, name="smollm2", n_ctx=2048, threads=Settings().effective_threads())
    yield SharedBackend(backend)  # type: ignore[misc]
    backend.close()


@pytest.fixture
def real_session(store: Store, settings: Settings, home: Path, real_backend: Backend) -> Session:
    """A session on the real bundled model (shared across tests to keep the suite quick)."""
    return Session(store, settings, home=home, loader=lambda spec, s: real_backend, use_memory=False)


@pytest.fixture(scope="session")
def embedder(shared_cache: Path) -> Embedder:
    """The bundled MiniLM embedder, loaded once for the whole run (its ONNX export cached in a scratch dir)."""
    shared = Embedder(threads=1, models_dir=shared_cache / "models")
    shared.load()
    return shared
