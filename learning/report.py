"""A run's loss curve, drawn two ways: a PNG for the report folder and a few lines of text for the terminal.

The PNG is written by hand (zlib + the PNG chunk layout, a few dozen lines) rather than with matplotlib: the
job needs one line chart, and matplotlib would add ~40 MiB of dependencies, a font cache under the home folder
and a slower start. The chart: the loss per step (light), its moving average (dark), a faint grid; the numbers
are in report.json and in the terminal plot.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

WIDTH, HEIGHT, MARGIN = 640, 320, 24
BACKGROUND = (255, 255, 255)
GRID = (228, 228, 228)
AXIS = (120, 120, 120)
RAW = (150, 190, 235)
SMOOTH = (20, 80, 170)
BARS = "▁▂▃▄▅▆▇█"


def smooth(values: Sequence[float], window: int = 5) -> list[float]:
    """Trailing moving average (the first points average what there is)."""
    out: list[float] = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def _resample(values: Sequence[float], width: int) -> list[float]:
    if len(values) <= width:
        return list(values)
    step = len(values) / width
    return [
        sum(values[int(i * step) : max(int(i * step) + 1, int((i + 1) * step))])
        / max(1, max(int(i * step) + 1, int((i + 1) * step)) - int(i * step))
        for i in range(width)
    ]


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """One line of block characters, low to high."""
    points = _resample([v for v in values if math.isfinite(v)], width)
    if not points:
        return ""
    low, high = min(points), max(points)
    span = high - low or 1.0
    return "".join(BARS[min(len(BARS) - 1, int((v - low) / span * (len(BARS) - 1) + 0.5))] for v in points)


def terminal_plot(losses: Sequence[float], width: int = 60) -> str:
    """The loss curve in a few lines of text: first and last loss, the sparkline of the moving average."""
    if not losses:
        return "no training steps"
    line = sparkline(smooth(losses), width)
    return f"loss {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} steps (min {min(losses):.3f})\n  {line}"


# -- the PNG ----------------------------------------------------------------------------------------------------------


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(BACKGROUND) * (width * height))

    def dot(self, x: int, y: int, colour: tuple[int, int, int]) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            at = (y * self.width + x) * 3
            self.pixels[at : at + 3] = bytes(colour)

    def line(self, x0: float, y0: float, x1: float, y1: float, colour: tuple[int, int, int], thick: int = 1) -> None:
        steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for i in range(steps + 1):
            t = i / steps
            x, y = round(x0 + (x1 - x0) * t), round(y0 + (y1 - y0) * t)
            for dx in range(thick):
                for dy in range(thick):
                    self.dot(x + dx, y + dy, colour)

    def png(self) -> bytes:
        rows = b"".join(
            b"\x00" + bytes(self.pixels[y * self.width * 3 : (y + 1) * self.width * 3]) for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        return (
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
        )


def loss_png(losses: Sequence[float], path: Path, width: int = WIDTH, height: int = HEIGHT) -> Path:
    """Draw the loss per step and its moving average into ``path`` (a PNG); an empty curve draws the axes only."""
    canvas = _Canvas(width, height)
    left, right, top, bottom = MARGIN, width - MARGIN, MARGIN, height - MARGIN
    for i in range(5):  # horizontal grid lines, a quarter apart
        y = top + (bottom - top) * i / 4
        canvas.line(left, y, right, y, GRID)
    canvas.line(left, top, left, bottom, AXIS)
    canvas.line(left, bottom, right, bottom, AXIS)
    values = [v for v in losses if math.isfinite(v)]
    if values:
        low, high = min(0.0, min(values)), max(values)
        span = high - low or 1.0

        def xy(i: int, v: float) -> tuple[float, float]:
            x = left + (right - left) * (i / max(1, len(values) - 1))
            return x, bottom - (bottom - top) * (v - low) / span

        for series, colour, thick in ((values, RAW, 1), (smooth(values), SMOOTH, 2)):
            points = [xy(i, v) for i, v in enumerate(series)]
            if len(points) == 1:
                points.append((right, points[0][1]))
            for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
                canvas.line(x0, y0, x1, y1, colour, thick)
    path.write_bytes(canvas.png())
    return path
