"""The checker's badge under a reply: one word (ok, check, unsupported, masked), a few words on why, and the key
that says more. Clicking it opens the "why" as well."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Label

from assistant.checks import BADGES, UNSURE, ReplyCheck

WHY_KEY = "Ctrl+S"

# What each badge means, for the "why" dialog and the help.
MEANING = {
    "ok": "Nothing to flag: what it states is in its sources, and it shows no data you did not give it.",
    "check": "Worth a look: nothing to check it against, the model was unsure in places, or it holds personal data.",
    "unsupported": "It states things its sources (the conversation, memories, facts) do not support.",
    "masked": "Personal data or a secret you did not type here was masked (or the whole reply withheld).",
}


def valid_badge(badge: str | None) -> str | None:
    """The badge if this version knows it (a newer one's word is shown as no badge rather than wrongly)."""
    return badge if badge in BADGES else None


def summary(badge: str, check: ReplyCheck | None) -> str:
    """A few words beside the badge: what it counts."""
    if check is None:
        return ""
    masked = sum(1 for p in check.privacy if p.get("action") == "masked")
    warned = sum(1 for p in check.privacy if p.get("action") == "warned")
    g = check.grounding
    unsure = sum(1 for f in g.flagged if f.reason.startswith(UNSURE)) if g is not None else 0
    unsupported = (len(g.flagged) - unsure) if g is not None else 0
    parts: list[str] = []
    if check.blocked:
        parts.append("withheld")
    elif masked:
        parts.append(f"{masked} masked")
    if unsupported:
        parts.append(f"{unsupported} unsupported")
    if unsure:
        parts.append(f"{unsure} unsure")
    if warned:
        parts.append(f"{warned} personal")
    if g is not None and g.score is None:
        parts.append("no sources to check against")
    elif g is not None and g.score is not None and badge != "ok":
        parts.append(f"grounding {g.score:.2f}")
    return " · ".join(parts)


class CheckBadge(Horizontal):
    """One reply's verdict in a line: the badge word, coloured by its CSS class, then what it counts."""

    class Clicked(Message):
        """The user clicked the badge: show why."""

        def __init__(self, badge: CheckBadge) -> None:
            super().__init__()
            self.badge = badge

    def __init__(self, badge: str, check: ReplyCheck | None) -> None:
        super().__init__(classes="check-badge")
        self.badge = badge
        self.check = check

    def compose(self) -> ComposeResult:
        yield Label(self.badge, classes=f"badge-word -{self.badge}")
        told = summary(self.badge, self.check)
        yield Label(f"{told} · {WHY_KEY} why" if told else f"{WHY_KEY} why", classes="badge-summary")

    def on_click(self, event: events.Click) -> None:
        event.stop()  # asking why is not picking the reply for F3, F4, F5 and F9
        self.post_message(self.Clicked(self))
