"""A reply's Markdown with the checker's flagged spans highlighted.

Textual's Markdown has no highlight syntax (``==mark==`` is not parsed, and an unknown inline token would unbalance
its style stack), and offsets into the Markdown source do not survive rendering. So each flagged span is wrapped in
the source with a pair of rare Unicode brackets (one pair per kind of flag), the blocks render as usual, and each
block's content then drops the brackets and styles what lay between them. The brackets are punctuation to the
Markdown parser, like a quote, so emphasis next to them still opens and closes as it did without them.

Spans never reach into code blocks (the brackets would show there) or onto a line's block syntax (a bracket
before ``- `` would turn a list item into a paragraph).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.token import Token
from textual.content import Content, Span
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownBlock

from assistant.checks import UNSURE, ReplyCheck

# Kinds of highlight, each a component class of CheckedMarkdown (styled in app.tcss).
KINDS = ("unsupported", "unsure", "masked", "warned")
# Supplemental Punctuation brackets from Unicode 14, which no reply is expected to contain.
OPEN = {"unsupported": "\u2e55", "unsure": "\u2e57", "masked": "\u2e59", "warned": "\u2e5b"}
CLOSE = {kind: chr(ord(bracket) + 1) for kind, bracket in OPEN.items()}
KIND_OF_OPEN = {bracket: kind for kind, bracket in OPEN.items()}
KIND_OF_CLOSE = {bracket: kind for kind, bracket in CLOSE.items()}
MARKS = frozenset(OPEN.values()) | frozenset(CLOSE.values())

# A line's block syntax: indentation, quotes, list bullets, numbers, heading hashes, a table's leading pipe.
_BLOCK_PREFIX = re.compile(r"[ \t]*(?:(?:>[ \t]?|[-*+][ \t]+|\d{1,9}[.)][ \t]+|#{1,6}[ \t]+|\|[ \t]*)[ \t]*)*")
_ONLY_SYNTAX = re.compile(r"[\s#*_\-=`>~|+]*")
_CODE_BLOCKS = frozenset({"fence", "code_block", "html_block"})


@dataclass(frozen=True, slots=True)
class Highlight:
    """A span of the reply to highlight: character offsets into the reply as stored, ``end`` exclusive."""

    start: int
    end: int
    kind: str  # one of KINDS


def highlights(check: ReplyCheck | None) -> list[Highlight]:
    """The spans of a verdict worth showing: unsupported or unsure grounding flags, masked or warned data."""
    if check is None:
        return []
    found: list[Highlight] = []
    if check.grounding is not None:
        for flag in check.grounding.flagged:
            kind = "unsure" if flag.reason.startswith(UNSURE) else "unsupported"
            found.append(Highlight(flag.start, flag.end, kind))
    for item in check.privacy:
        if item.get("action") in ("masked", "warned"):
            try:
                found.append(Highlight(int(item["start"]), int(item["end"]), str(item["action"])))
            except (KeyError, TypeError, ValueError):
                continue  # a record this version cannot read is not worth losing the reply over
    return found


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("gfm-like")  # the parser Textual's Markdown uses


def _code_lines(text: str) -> set[int]:
    """Line numbers inside fenced or indented code (and raw HTML), where a bracket would show as it is."""
    lines: set[int] = set()
    for token in _parser().parse(text):
        if token.type in _CODE_BLOCKS and token.map is not None:
            lines.update(range(token.map[0], token.map[1]))
    return lines


def _segments(text: str, spans: Iterable[Highlight]) -> list[Highlight]:
    """The spans cut at line ends and trimmed to what a line shows, outside code, without block syntax."""
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    code = _code_lines(text)
    out: list[Highlight] = []
    for span in spans:
        start, end = max(0, span.start), min(len(text), span.end)
        for number in range(len(starts) - 1):
            line_start, line_end = starts[number], starts[number + 1] - 1
            a, b = max(start, line_start), min(end, line_end)
            if a >= b or number in code:
                continue
            prefix = _BLOCK_PREFIX.match(text, line_start, line_end)
            a = max(a, prefix.end() if prefix else line_start)
            while b > a and text[b - 1] in " \t|":
                b -= 1
            if a >= b or _ONLY_SYNTAX.fullmatch(text, a, b):
                continue
            if text[a - 1 : a] == "\\":  # keep an escape next to the character it escapes
                a -= 1
            if text[b - 1 : b] == "\\" and b < line_end:
                b += 1
            out.append(Highlight(a, b, span.kind))
    return _merged(out)


def _merged(spans: list[Highlight]) -> list[Highlight]:
    """Overlapping spans of one kind as one (brackets of one kind must not nest)."""
    out: list[Highlight] = []
    for span in sorted(spans, key=lambda s: (s.kind, s.start)):
        last = out[-1] if out else None
        if last is not None and last.kind == span.kind and span.start <= last.end:
            out[-1] = Highlight(last.start, max(last.end, span.end), span.kind)
        else:
            out.append(span)
    return out


def mark(text: str, spans: Iterable[Highlight]) -> str:
    """``text`` with each span wrapped in its kind's brackets (the text itself when nothing can be marked)."""
    spans = list(spans)
    if not spans or any(char in MARKS for char in text):
        return text
    inserts: list[tuple[int, int, str]] = []
    for span in _segments(text, spans):
        inserts.append((span.start, 1, OPEN[span.kind]))
        inserts.append((span.end, 0, CLOSE[span.kind]))  # at one offset, one span closes before the next opens
    out: list[str] = []
    at = 0
    for offset, _, bracket in sorted(inserts):
        out.append(text[at:offset])
        out.append(bracket)
        at = offset
    out.append(text[at:])
    return "".join(out)


def unmark(content: Content) -> Content:
    """The content without the brackets, what lay between them styled as its kind's component class."""
    plain = content.plain
    if not any(char in MARKS for char in plain):
        return content
    kept: list[str] = []
    new_at: list[int] = []  # the offset in the new text of each old offset
    opened: dict[str, int] = {}
    added: list[Span] = []
    for char in plain:
        new_at.append(len(kept))
        if char in KIND_OF_OPEN:
            opened.setdefault(KIND_OF_OPEN[char], len(kept))
        elif char in KIND_OF_CLOSE:
            # A span that began in an earlier block (a paragraph's lines) starts at this block's start.
            start = opened.pop(KIND_OF_CLOSE[char], 0)
            added.append(Span(start, len(kept), f".check--{KIND_OF_CLOSE[char]}"))
        else:
            kept.append(char)
    new_at.append(len(kept))
    added += [Span(start, len(kept), f".check--{kind}") for kind, start in opened.items()]
    added.sort(key=lambda s: s.start - s.end)  # longest first, so a masked value shows inside its flagged sentence
    spans = [Span(new_at[s.start], new_at[s.end], s.style) for s in content.spans]
    spans += added  # last, so the highlight shows over emphasis and inline code
    return Content("".join(kept), spans=[s for s in spans if s.end > s.start])


@cache
def _highlighting(block: type[MarkdownBlock]) -> type[MarkdownBlock]:
    """``block`` whose inline content loses the brackets and gains the highlights (its CSS type stays a match)."""

    def _token_to_content(self: MarkdownBlock, token: Token) -> Content:
        return unmark(block._token_to_content(self, token))

    return type(block.__name__, (block,), {"_token_to_content": _token_to_content})


class CheckedMarkdown(Markdown):
    """Markdown whose source may carry the brackets of :func:`mark`; it renders them as highlights."""

    COMPONENT_CLASSES = Markdown.COMPONENT_CLASSES | {f"check--{kind}" for kind in KINDS}

    def get_block_class(self, block_name: str) -> type[MarkdownBlock]:
        return _highlighting(super().get_block_class(block_name))
