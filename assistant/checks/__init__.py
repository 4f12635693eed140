"""The checker: privacy (personal data and secrets) and grounding (claims the sources do not support).

One implementation, importable without the UI or the model (the learning job will redact its training data with
it). Nothing heavy is imported here: ``assistant.checks.privacy`` loads presidio and detect-secrets, and
``assistant.checks.grounding`` the embedder, on first use.

The records below are the contract between the detectors, the `assistant check` command, the chat turn and the
TUI. Offsets are character offsets into the checked text, ``end`` exclusive.
"""

from __future__ import annotations

import json
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


Badge = Literal["ok", "check", "unsupported", "masked"]
BADGES: tuple[str, ...] = ("ok", "check", "unsupported", "masked")


@dataclass(slots=True)
class ReplyCheck:
    """The checker's verdict on one chat reply, stored with it (``messages.checks``, ``messages.badge``).

    Offsets are into the reply as shown and stored (a masked value's offsets are its placeholder's, ``[email]``).
    ``privacy`` holds one ``{"type", "start", "end", "action"}`` per finding, action "masked", "shown" (the user
    typed it in this conversation) or "warned" (policy warn); ``blocked`` says the whole reply was withheld.
    ``grounding`` is None when grounding is off; its score is None when the reply had no sources to check against.
    """

    policy: str = "redact"
    privacy: list[dict[str, Any]] = field(default_factory=list)
    grounding: Grounding | None = None
    blocked: bool = False
    sources: int = 0  # how many sources the reply was checked against (conversation, memories, facts)

    @property
    def badge(self) -> Badge:
        """One word for the reply: unsupported (claims its sources do not support) before masked (something was
        masked or withheld) before check (worth a look: unsure spans, warned data, or nothing to check against)
        before ok."""
        g = self.grounding
        if g is not None and g.score is not None and any(not f.reason.startswith(UNSURE) for f in g.flagged):
            return "unsupported"
        if self.blocked or any(p["action"] == "masked" for p in self.privacy):
            return "masked"
        if any(p["action"] == "warned" for p in self.privacy) or (g is not None and (g.score is None or g.flagged)):
            return "check"
        return "ok"

    def why(self) -> list[str]:
        """Short sentences for the TUI's "why": what was masked, what is unsupported and why, what to verify."""
        lines: list[str] = []
        if self.blocked:
            withheld = ", ".join(sorted({p["type"] for p in self.privacy if p["action"] == "masked"}))
            lines.append(f"The reply was withheld: it contained {withheld} you did not type here.")
        masked = [p["type"] for p in self.privacy if p["action"] == "masked"]
        if masked and not self.blocked:
            kinds = ", ".join(sorted(set(masked)))
            lines.append(
                f"Masked {len(masked)} item{'s' if len(masked) > 1 else ''} ({kinds}): personal data or a "
                "secret you did not type in this conversation."
            )
        warned = [p["type"] for p in self.privacy if p["action"] == "warned"]
        if warned:
            lines.append(f"Contains personal data you did not type here ({', '.join(sorted(set(warned)))}).")
        g = self.grounding
        if g is not None:
            if g.score is None:
                lines.append("Nothing to check this reply against (general knowledge): verify what matters.")
            else:
                lines.append(f"Grounding {g.score:.2f} (below {THRESHOLD_TEXT} is unsupported).")
            lines += [f"“{f.text.strip()}”: {f.reason}" for f in g.flagged]
        return lines or ["Nothing found."]

    def to_dict(self) -> dict[str, Any]:
        """The ``chat --json`` ``checks`` object (and what is stored)."""
        return {
            "policy": self.policy,
            "privacy": list(self.privacy),
            "blocked": self.blocked,
            "sources": self.sources,
            "grounding": self.grounding.to_dict() if self.grounding is not None else None,
            "badge": self.badge,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplyCheck:
        g = data.get("grounding")
        grounding = None
        if isinstance(g, dict):
            flags = [
                Flag(int(f["start"]), int(f["end"]), str(f["text"]), str(f["reason"])) for f in g.get("flagged", [])
            ]
            grounding = Grounding(score=g.get("score"), flagged=flags)
        return cls(
            policy=str(data.get("policy", "redact")),
            privacy=[dict(p) for p in data.get("privacy", [])],
            grounding=grounding,
            blocked=bool(data.get("blocked", False)),
            sources=int(data.get("sources", 0)),
        )

    @classmethod
    def from_json(cls, text: str | None) -> ReplyCheck | None:
        """The stored verdict, or None for a reply never checked (or a record this version cannot read)."""
        if not text:
            return None
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


UNSURE = "the model was unsure"  # the reason of a logprob flag starts with this (it marks, but is no claim)
THRESHOLD_TEXT = "0.52"  # assistant.checks.grounding.THRESHOLD, kept here so reading a verdict loads nothing
