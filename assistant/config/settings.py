"""The validated settings object: ``settings.toml`` in the data dir, then ``ASSISTANT_*`` environment variables.

Imported through ``assistant.config`` (which loads this module, and pydantic, only when a setting is validated).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from assistant.errors import InputError
from storage.paths import SETTINGS_FILE, data_dir, ensure_private_dir, make_private

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful, private assistant running locally on the user's computer. "
    "Answer clearly and concisely. If you do not know something, say so."
)


class McpServer(BaseModel):
    """One stdio MCP server (``[mcp_servers.NAME]`` in settings.toml): started when its tools are first needed."""

    model_config = ConfigDict(extra="forbid")

    command: str = Field(min_length=1, description="The program that starts the server (a path, or a name on PATH).")
    args: list[str] = Field(default_factory=list, description="Its command-line arguments.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables it needs (besides these it gets only TZ, PATH, HOME, USER, LOGNAME, "
        "SHELL and TERM).",
    )
    timeout: float = Field(
        default=20.0, gt=0.0, le=600.0, description="Seconds to wait for it to start, and for each call."
    )


class Settings(BaseModel):
    """Every user-tunable setting, validated."""

    model: str = Field("smollm2", description="Name of the active model (see `assistant models list`).")
    threads: int = Field(
        0, ge=0, le=256, description="CPU threads for the model; 0 picks a count that leaves a core for the UI."
    )
    context_size: int = Field(
        2048, ge=256, le=131072, description="Context window in tokens (a full window takes seconds to read on a CPU)."
    )
    max_tokens: int = Field(512, ge=1, le=32768, description="Longest reply in tokens.")
    temperature: float = Field(0.3, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    seed: int = Field(-1, description="Sampling seed; -1 picks a random one each reply.")
    repeat_penalty: float = Field(
        1.15,
        ge=1.0,
        le=2.0,
        description="Penalty on tokens used in the last 64 (1.0: none); 1.15 stopped every measured loop of SmolLM2.",
    )
    frequency_penalty: float = Field(
        0.0, ge=0.0, le=2.0, description="Penalty growing with how often a token was used in the last 64 (0: none)."
    )
    presence_penalty: float = Field(
        0.0, ge=0.0, le=2.0, description="Penalty on any token used in the last 64, once (0: none)."
    )
    cut_loops: bool = Field(
        True, description="Stop a reply that keeps repeating itself, with a note saying so (off: run to max_tokens)."
    )
    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT)
    theme: str = Field(
        "dark",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="UI theme: dark, light, or a Textual theme's name (the TUI checks it and falls back to dark).",
    )
    memory: bool = Field(
        True, description="Recall earlier conversations and remembered facts into the prompt (off: neither)."
    )
    memory_k: int = Field(5, ge=1, le=50, description="Most snippets of earlier conversations recalled per turn.")
    memory_tokens: int = Field(
        400, ge=0, le=8192, description="Token budget for facts and recalled snippets (at most a fifth of the context)."
    )
    memory_min_score: float = Field(
        0.5,
        ge=-1.0,
        le=2.0,
        description="Recalled snippets scoring below this are left out (hybrid score: cosine plus word-match bonuses).",
    )
    embedder_threads: int = Field(
        1, ge=1, le=64, description="CPU threads for the embedder (leaves the model its cores)."
    )
    privacy: Literal["off", "warn", "redact", "block"] = Field(
        "redact",
        description=(
            "Personal data in a reply that the user did not type in this conversation: redact (masked as [email], "
            "[card], ...), warn (shown, flagged), block (the reply is withheld) or off (not checked). "
            "Secrets are masked whatever this says, unless it is off."
        ),
    )
    grounding: bool = Field(
        True, description="Score each reply against its sources and flag what they do not support (off: not scored)."
    )
    learn: bool = Field(
        True,
        description="Learn from conversations each night (off: the learning job selects nothing; see also a "
        "conversation's own 'learn' toggle).",
    )
    adapter: bool = Field(
        True,
        description="Answer with the active adapter that learning made for the model (off: the base model alone; "
        "see `assistant adapters`).",
    )
    notes_dir: str = Field(
        "",
        description="A folder of your Markdown and text notes that the search_notes tool searches, read-only "
        "(empty: none).",
    )
    mcp_servers: dict[str, McpServer] = Field(
        default_factory=dict,
        description="Stdio MCP servers whose tools the assistant may call, by name ([mcp_servers.NAME] tables).",
    )
    tools: bool = Field(
        True,
        description="Let a model whose chat template supports tools call them (off: only `/tool NAME` runs one).",
    )
    tool_steps: int = Field(
        3, ge=0, le=20, description="Most rounds of tool calls the model may make before it must answer."
    )
    plugins_disabled: list[str] = Field(
        default_factory=list,
        description="Installed plugins not to load, by entry-point name (see `assistant plugins list`).",
    )
    # Sentences about the settings file that did not stop loading it (unknown keys): the CLI prints them on stderr,
    # the TUI shows them as notifications.
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """What the user should hear about the settings they gave (e.g. a misspelt key that is ignored)."""
        return list(self._warnings)

    @field_validator("model")
    @classmethod
    def _model_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("notes_dir")
    @classmethod
    def _notes_dir(cls, value: str) -> str:
        value = value.strip()
        if value and not Path(value).expanduser().is_absolute():
            raise ValueError("must be an absolute folder path (or start with ~)")
        return value

    @field_validator("plugins_disabled", mode="before")
    @classmethod
    def _plugins_disabled(cls, value: Any) -> Any:
        if isinstance(value, str):  # from $ASSISTANT_PLUGINS_DISABLED: names separated by commas
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("mcp_servers", mode="before")
    @classmethod
    def _mcp_servers(cls, value: Any) -> Any:
        if isinstance(value, str):  # from $ASSISTANT_MCP_SERVERS: a JSON object
            import json

            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ValueError("must be a JSON object of servers") from exc
        if isinstance(value, dict):
            for name in value:
                if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
                    raise ValueError(f"the server name {name!r} must be lowercase letters, digits and _ (at most 32)")
        return value

    def effective_threads(self) -> int:
        """The thread count to give llama.cpp.

        With every core busy, llama.cpp's OpenMP workers spin-wait and decode collapses (measured: 2 threads on
        2 cores with the UI or an embedder running fall to 1-2 tok/s), so by default one core is left free.
        """
        if self.threads:
            return self.threads
        cores = os.cpu_count() or 1
        return max(1, cores - 1) if cores <= 4 else cores - 2

    def memory_budget(self, n_ctx: int) -> int:
        """Tokens the memory block may use: the setting, but never more than a fifth of the context window."""
        return max(0, min(self.memory_tokens, n_ctx // 5))


def env_name(key: str) -> str:
    """The environment variable that overrides one setting."""
    return f"ASSISTANT_{key.upper()}"


def _env_overrides() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        raw = os.environ.get(env_name(name))
        if raw is not None:
            values[name] = raw
    return values


def read_settings_file(file: Path) -> dict[str, Any]:
    """The raw values of a settings file ({} when there is none); a broken file is one sentence (exit 2)."""
    if not file.exists():
        return {}
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"The settings file {file} is not valid TOML ({exc}); fix or delete it.") from exc
    except OSError as exc:
        raise InputError(f"The settings file {file} cannot be read: {exc.strerror or exc}.") from exc


def unknown_keys_warnings(values: dict[str, Any], file: Path) -> list[str]:
    """One sentence per key of the settings file that is no setting (it would be ignored without a word)."""
    unknown = sorted(key for key in values if key not in Settings.model_fields)
    return [
        f"The setting '{key}' in {file} is not one the assistant knows; it is ignored (a typo?)." for key in unknown
    ]


def settings_warnings(home: Path | None = None) -> list[str]:
    """Warnings about the settings file, never an error: for the CLI to print before any command runs."""
    file = (home or data_dir()) / SETTINGS_FILE
    try:
        return unknown_keys_warnings(read_settings_file(file), file)
    except InputError:
        return []  # reported, with its cause, by the command that needs the settings


def load_settings(home: Path | None = None) -> Settings:
    """Read settings.toml from the data dir, apply ``ASSISTANT_*`` environment overrides, validate."""
    home = home or data_dir()
    file = home / SETTINGS_FILE
    values = read_settings_file(file)
    warnings = unknown_keys_warnings(values, file)
    sources = {key: f"'{key}' in {file}" for key in values}
    env = _env_overrides()
    values.update(env)
    sources.update({key: f"the environment variable {env_name(key)}" for key in env})
    settings = validate(values, file, sources)
    settings._warnings = warnings
    return settings


def validate(values: dict[str, Any], file: Path, sources: dict[str, str] | None = None) -> Settings:
    """Build the Settings object, turning the first validation error into one sentence that names its source."""
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        source = (sources or {}).get(key) or f"'{key}' in {file}"
        raise InputError(f"The setting '{where}' is invalid: {first['msg']} (from {source}).") from exc


def save_setting(key: str, value: Any, home: Path | None = None) -> None:
    """Write one setting to settings.toml, keeping the others."""
    import tomli_w

    home = ensure_private_dir(home or data_dir())
    file = home / SETTINGS_FILE
    values = read_settings_file(file)
    values[key] = value
    validate(values, file)  # before writing
    tmp = file.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(values), encoding="utf-8")
    make_private(tmp)
    tmp.replace(file)
