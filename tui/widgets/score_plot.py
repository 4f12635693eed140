"""Scores over time in a few lines of block characters: two bars per learning run (about you, general).

Drawn by hand rather than with textual-plotext: two bar series of shares in 0..1 need a dozen lines, and plotext
is not a dependency of the project.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

EIGHTHS = " ▁▂▃▄▅▆▇█"
PROBE_STYLE = "bold cyan"
CONTROL_STYLE = "bold green"
LABEL = 5  # "100% "


def _cell(value: float, row: int, height: int) -> str:
    """The block of one bar in one row (row 0 at the bottom): full, empty, or the eighths that reach into it."""
    fill = max(0.0, min(1.0, value * height - row))
    return EIGHTHS[round(fill * 8)]


def score_plot(probes: Sequence[float], controls: Sequence[float], *, height: int = 3, width: int = 80) -> Text:
    """Probe and control accuracy per run, oldest left, the latest runs that fit ``width``; a legend under it."""
    room = max(1, (width - LABEL - 1) // 3)
    pairs = list(zip(probes, controls, strict=True))[-room:]
    text = Text()
    for row in range(height - 1, -1, -1):
        label = "100%" if row == height - 1 else "  0%" if row == 0 else ""
        text.append(f"{label:>4}│", style="dim")
        for probe, control in pairs:
            text.append(_cell(probe, row, height), style=PROBE_STYLE)
            text.append(_cell(control, row, height), style=CONTROL_STYLE)
            text.append(" ")
        text.append("\n")
    text.append("    └" + "─" * (3 * len(pairs)) + " ", style="dim")  # the legend beside the axis: one line less
    text.append("█", style=PROBE_STYLE)
    text.append(" about you  ")
    text.append("█", style=CONTROL_STYLE)
    shown = f"{len(pairs)} scored runs" if len(pairs) > 1 else "1 scored run"
    text.append(f" general · {shown}, oldest left")
    return text
