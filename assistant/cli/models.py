"""`assistant models`: list, add, pull, use and remove models."""

from __future__ import annotations

from pathlib import Path

import click

from assistant.app_store import open_store
from assistant.cli.output import emit_json, note, print_table
from assistant.config import data_dir, env_model, load_settings, models_dir, save_setting
from assistant.errors import InputError, ModelError
from assistant.models import GEMMA3_FILE, ModelSpec, list_models, resolve, smollm2_path
from storage import Store

DEFAULT_MODEL = "smollm2"


def human_size(size: int | None) -> str:
    """A file size for people: 98.1 MB."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - the loop always returns


def known_path(spec: ModelSpec, models_dir: Path) -> Path | None:
    """Where a model's file is, without side effects (a bundled Gemma is only assembled when it is used)."""
    if spec.name == "smollm2":
        return smollm2_path(models_dir)
    if spec.name == "gemma3-270m":
        target = models_dir / GEMMA3_FILE
        return target if target.exists() else None
    return spec.path


def needs_assembly(name: str, models_dir: Path) -> bool:
    return name == "gemma3-270m" and not (models_dir / GEMMA3_FILE).exists()


def prepare_model(store: Store, name: str, models_dir: Path) -> ModelSpec:
    """Resolve a model, telling the user first when a bundled one must be assembled (about 250 MB, once)."""
    if needs_assembly(name, models_dir):
        note(f"Assembling the bundled model {name} into {models_dir} (about 250 MB, only this once)…")
    return resolve(store, name, models_dir)


def check_hub_reachable(timeout: float = 5.0) -> None:
    """Fail fast, in one sentence, without the network (the hub client would retry for half a minute)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ModelError("HF_HUB_OFFLINE is set, so nothing can be pulled; unset it and connect to the internet.")
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ModelError(
            f"Cannot reach the Hugging Face Hub ({host}): `models pull` needs the internet; everything else works "
            "offline."
        ) from exc


def _env_overrides_model() -> bool:
    return env_model() is not None


@click.group()
def models() -> None:
    """List, add, pull, use and remove models."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_(as_json: bool) -> None:
    """List the bundled and added models; * marks the active one."""
    home = data_dir()
    models_path = models_dir(home)
    active = load_settings(home).model
    with open_store(home) as store:
        specs = list_models(store)
    rows: list[dict[str, object]] = []
    cells: list[tuple[str, ...]] = []
    for spec in specs:
        path = known_path(spec, models_path)
        size = path.stat().st_size if path is not None and path.is_file() else None
        missing = path is not None and size is None
        rows.append(
            {
                **spec.to_dict(),
                "path": str(path) if path else None,
                "active": spec.name == active,
                "size_bytes": size,
                "missing": missing,
            }
        )
        if path is None:
            where = "(assembled on first use)" if spec.name == "gemma3-270m" else "(not installed)"
        else:
            where = f"{path} (missing)" if missing else str(path)
        cells.append(("*" if spec.name == active else "", spec.name, spec.kind, spec.source, human_size(size), where))
    if as_json:
        emit_json(rows)
        return
    print_table(["", "name", "kind", "source", "#size", "path"], cells)
    if active not in {r["name"] for r in rows}:
        note(f"The active model '{active}' is not registered; pick one with `assistant models use NAME`.")


@models.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--name", "-n", help="Name to use it by (default: from the file name).")
def add(path: Path, name: str | None) -> None:
    """Register a local GGUF model file (the file stays where it is)."""
    from assistant.models import add_model

    with open_store() as store:
        if name and store.get_model(name) is not None:
            note(f"Replacing the model registered as '{name}'.")
        spec = add_model(store, path, name)
    note(f"Added model '{spec.name}' ({spec.path}); use it with `assistant models use {spec.name}`.")


@models.command()
@click.argument("name")
def use(name: str) -> None:
    """Make NAME the active model (checked before it is saved)."""
    home = data_dir()
    with open_store(home) as store:
        prepare_model(store, name, models_dir(home))
    save_setting("model", name, home)
    note(f"Now using '{name}'.")
    if _env_overrides_model() and env_model() != name:
        note(f"ASSISTANT_MODEL={env_model()} is set and overrides this setting in this shell.")


@models.command()
@click.argument("name")
def remove(name: str) -> None:
    """Forget an added model (its file is left in place)."""
    from assistant.models import remove_model

    home = data_dir()
    with open_store(home) as store:
        row = store.get_model(name)
        remove_model(store, name)
    note(f"Removed model '{name}'" + (f"; its file {row['path']} was left in place." if row else "."))
    if load_settings(home).model == name and not _env_overrides_model():
        save_setting("model", DEFAULT_MODEL, home)
        note(f"It was the active model; '{DEFAULT_MODEL}' is active again.")


@models.command()
@click.argument("repo")
@click.argument("filename", metavar="FILE")
@click.option("--name", "-n", help="Name to use it by (default: from the file name).")
def pull(repo: str, filename: str, name: str | None) -> None:
    """Download FILE (a .gguf) from the Hugging Face Hub repository REPO and register it.

    This is the one command that uses the network.
    """
    from assistant.models import pull_model

    home = data_dir()
    if not filename.endswith(".gguf"):  # before the network check: a wrong name is the first thing to fix
        raise InputError("Only GGUF files can be pulled; give a FILE ending in .gguf.")
    check_hub_reachable()
    with open_store(home) as store:
        note(f"Downloading {filename} from {repo}…")
        spec = pull_model(store, repo, filename, models_dir(home), name)
    note(f"Added model '{spec.name}' ({spec.path}); use it with `assistant models use {spec.name}`.")
