"""What a reply was given from memory: a collapsed "recalled N memories" section under the reply.

The items come from ``assistant.recalled``: built from the turn while it streams, or from the recalls recorded with
replies loaded from the database.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widgets import Collapsible, Static

from assistant.recalled import RecalledItem

SHOWN_CHARS = 240  # a snippet is a reminder of what was recalled, not the whole message


def title(count: int) -> str:
    return f"recalled {count} {'memory' if count == 1 else 'memories'}"


def describe(items: list[RecalledItem]) -> Text:
    """One line per memory: date, score, who said it, and the start of the text."""
    text = Text()
    for number, item in enumerate(items):
        if number:
            text.append("\n")
        day = (item.created_at or "")[:10]
        if item.kind == "fact":
            text.append("fact", style="bold green")
            if day:
                text.append(f" · {day}", style="dim")
        else:
            text.append(day or "earlier", style="bold cyan")
            if item.score is not None:
                text.append(f" · score {item.score:.2f}", style="dim")
            text.append(f" · {'you' if item.role == 'user' else 'assistant'}", style="dim")
        shown = " ".join(item.text.split())
        if len(shown) > SHOWN_CHARS:
            shown = shown[:SHOWN_CHARS].rstrip() + "…"
        text.append(f"  {shown}")
    return text


class Recalled(Collapsible):
    """The memories a reply was given, collapsed by default."""

    def __init__(self, items: list[RecalledItem]) -> None:
        self.items = list(items)
        super().__init__(Static(describe(self.items), classes="recalled-list"), title=title(len(self.items)))
        self.add_class("recalled")

    def on_click(self, event: events.Click) -> None:
        event.stop()  # opening the list is not picking the reply for F3, F4, F5 and F9
