"""Settings and the private data dir."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from assistant.config import Settings, ensure_private_dir, load_settings, save_setting
from assistant.errors import AssistantError, StorageError
from storage.db import open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_and_database_are_private(home: Path) -> None:
    with open_store() as store:
        cid = store.create_conversation()
        store.add_message(cid, "user", "hello")
        assert mode(home) == 0o700
        for file in home.iterdir():
            assert mode(file) == 0o600, file


def test_an_open_data_dir_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "open"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    ensure_private_dir(path)
    assert mode(path) == 0o700


def test_a_data_dir_under_a_file_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="Cannot use the data directory"):
        ensure_private_dir(blocker / "home")


def test_settings_file_then_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_setting("max_tokens", 99, home)
    save_setting("theme", "light", home)
    monkeypatch.delenv("ASSISTANT_MAX_TOKENS")
    settings = load_settings(home)
    assert settings.max_tokens == 99 and settings.theme == "light"
    assert mode(home / "settings.toml") == 0o600
    monkeypatch.setenv("ASSISTANT_MAX_TOKENS", "7")
    assert load_settings(home).max_tokens == 7


def test_invalid_settings_name_the_setting(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_THEME", "purple")
    with pytest.raises(AssistantError, match="'theme' is invalid"):
        load_settings(home)
    monkeypatch.delenv("ASSISTANT_THEME")
    ensure_private_dir(home)
    (home / "settings.toml").write_text("model = [unclosed")
    with pytest.raises(AssistantError, match="not valid TOML"):
        load_settings(home)


def test_save_setting_refuses_an_invalid_value(home: Path) -> None:
    with pytest.raises(AssistantError, match="'temperature' is invalid"):
        save_setting("temperature", 9.0, home)
    assert not (home / "settings.toml").exists() or "temperature" not in (home / "settings.toml").read_text()


def test_thread_count_leaves_a_core_free_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert Settings().effective_threads() == 1
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert Settings().effective_threads() == 6
    assert Settings(threads=3).effective_threads() == 3
