"""Settings and the private data dir."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from assistant.config import Settings, ensure_private_dir, load_settings, save_setting
from assistant.errors import AssistantError, InputError, StorageError
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
    monkeypatch.setenv("ASSISTANT_THEME", "not a theme!")
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


def test_a_bad_value_names_its_real_source(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_private_dir(home)
    (home / "settings.toml").write_text("temperature = 0.5\n")
    monkeypatch.setenv("ASSISTANT_TEMPERATURE", "9")
    with pytest.raises(InputError, match="environment variable ASSISTANT_TEMPERATURE") as caught:
        load_settings(home)
    assert "settings.toml" not in str(caught.value)
    monkeypatch.delenv("ASSISTANT_TEMPERATURE")
    (home / "settings.toml").write_text('temperature = "hot"\n')
    with pytest.raises(InputError, match=r"'temperature' in .*settings\.toml"):
        load_settings(home)


def test_unknown_keys_in_the_settings_file_are_warned_about(home: Path) -> None:
    ensure_private_dir(home)
    (home / "settings.toml").write_text('temprature = 0.5\ntheme = "light"\n[memory_settings]\nk = 3\n')
    settings = load_settings(home)
    assert settings.theme == "light"  # the known keys still apply
    assert len(settings.warnings) == 2
    assert "'temprature'" in settings.warnings[1] and "'memory_settings'" in settings.warnings[0]
    save_setting("theme", "dark", home)  # saving one setting keeps the file's other keys, warned about or not
    assert "temprature" in (home / "settings.toml").read_text()
    assert load_settings(home).warnings == settings.warnings
    (home / "settings.toml").write_text('theme = "light"\n')
    assert load_settings(home).warnings == []


def test_the_cli_says_which_setting_is_bad_with_exit_2(home: Path) -> None:
    from tests.test_cli_chat import one_sentence_error, run_cli

    ensure_private_dir(home)
    (home / "settings.toml").write_text("context_size = 10\n")
    line = one_sentence_error(run_cli("chat", "Hello?"), code=2)
    assert "'context_size'" in line and str(home / "settings.toml") in line
    line = one_sentence_error(run_cli("models", "list", ASSISTANT_CONTEXT_SIZE="many"), code=2)
    assert "ASSISTANT_CONTEXT_SIZE" in line and "settings.toml" not in line
    (home / "settings.toml").write_text("context_size = [\n")
    assert "not valid TOML" in one_sentence_error(run_cli("chat", "Hello?"), code=2)
    with open_store(home) as store:
        assert store.list_conversations() == []  # refused before anything was stored


def test_the_cli_warns_once_about_an_unknown_key_and_goes_on(home: Path) -> None:
    from tests.test_cli_chat import run_cli

    ensure_private_dir(home)
    (home / "settings.toml").write_text("temprature = 0.5\n")
    done = run_cli("models", "list")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Warning: ") and "'temprature'" in lines[0], done.stderr
    assert "smollm2" in done.stdout
