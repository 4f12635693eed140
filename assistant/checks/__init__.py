"""The checker: privacy (personal data and secrets) and grounding (claims the sources do not support).

One implementation, importable without the UI or the model (the learning job will redact its training data with
it). Nothing heavy is imported here: ``assistant.checks.privacy`` loads presidio and detect-secrets, and
``assistant.checks.grounding`` the embedder, on first use.

The records below are the contract between the detectors, the `assistant check` command, the chat turn and the
TUI. Offsets are character offsets into the checked text, ``end`` exclusive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Policy = Literal["off", "warn", "redact", "block"]
POLICIES: tuple[str, ...] = ("off", "warn", "redact", "block")


@dataclass(slots=True, frozen=True)
class Finding:
    """One piece of personal data or one secret found in a text."""

    type: str  # email, phone, card, iban, ssn (and other national ids), ip, address, api_key, token, password, ...
    start: int
    end: int
    text: str
    secret: bool = False  # secrets (keys, tokens, passwords, private keys) are always masked

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True, frozen=True)
class Flag:
    """A span of a reply that its sources do not support (or that the model itself was unsure of)."""

    start: int
    end: int
    text: str
    reason: str  # one short sentence: "the name 'Lisbon' appears in no source", "the model was unsure here"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Grounding:
    """How well a reply is supported by its sources: ``score`` in [0, 1] (1 = fully supported), or None when the
    reply had no sources to check against (general knowledge): it says so rather than scoring 1."""

    score: float | None
    flagged: list[Flag] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "flagged": [f.to_dict() for f in self.flagged]}
