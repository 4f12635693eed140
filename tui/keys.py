"""Alt+Enter as terminals without the kitty keyboard protocol send it (tmux, screen, most xterm-likes): ESC then CR.

Textual 8.2's XTermParser drops the Alt of a named key that it reissues from an ESC-prefixed sequence, so
ESC CR arrives as a plain "enter" and sends the message (Textualize/textual#6378, #6663, still open). The parser
below keeps the Alt for those keys; it is installed into the Linux drivers only while the bug is present, so a
fixed Textual makes this a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual import constants, events
from textual._xterm_parser import XTermParser
from textual.message import Message

ALT_ENTER = "\x1b\r"
ALT_ENTER_CSI_U = "\x1b[13;3u"  # the same key in the kitty protocol, which the parser reports as alt+enter


class AltKeyParser(XTermParser):
    """XTermParser that reports ESC + Enter (and ESC + Tab, Backspace, Space) as alt+enter (alt+tab, ...)."""

    def feed(self, data: str) -> Iterable[Message]:
        # Two Alt+Enters in one read would otherwise come out as "^", Enter, Alt+Enter: the parser reissues a
        # pending ESC + CR without its Alt when the next ESC arrives.
        if ALT_ENTER in data and not constants.DISABLE_KITTY_KEY:
            data = data.replace(ALT_ENTER, ALT_ENTER_CSI_U)
        return super().feed(data)

    def _sequence_to_key_events(self, sequence: str, alt: bool = False) -> Iterable[events.Key]:
        for event in super()._sequence_to_key_events(sequence, alt):
            if alt and len(sequence) == 1 and len(event.key) > 1 and not event.key.startswith("alt+"):
                yield events.Key(f"alt+{event.key}", None)  # no character: it must not be typed as text
            else:
                yield event


def keys_of(parser: XTermParser, data: str) -> list[events.Key]:
    """The key events ``parser`` makes of ``data`` as one burst of terminal input (its end flushes a lone ESC)."""
    found = [e for e in parser.feed(data) if isinstance(e, events.Key)]
    return found + [e for e in parser.feed("") if isinstance(e, events.Key)]


def needs_fix() -> bool:
    return [e.key for e in keys_of(XTermParser(), "\x1b\r")] == ["enter"]


def install() -> None:
    """Make the terminal drivers parse input with AltKeyParser (only while Textual itself drops the Alt)."""
    if not needs_fix():
        return
    from textual.drivers import linux_driver, linux_inline_driver

    for module in (linux_driver, linux_inline_driver):
        if module.XTermParser is XTermParser:
            module.XTermParser = AltKeyParser  # type: ignore[attr-defined]
