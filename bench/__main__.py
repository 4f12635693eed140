"""`python -m bench` (`make bench`): run every benchmark part, print one table, write bench/results/latest.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import CpuWindow, Row, load_average, log

RESULTS = Path(__file__).parent / "results" / "latest.json"
PARTS = (
    "chat",
    "checked",
    "threads",
    "rss",
    "oneshot",
    "recall",
    "multiturn",
    "quality",
    "tui",
    "grounding",
    "privacy",
    "checkcli",
    "stream",
    "personal",
    "learn",
    "plugins",
)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    import llama_cpp

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "llama_cpp_python": llama_cpp.__version__,
        "load_average_start": load_average(),
    }


def table(rows: list[Row]) -> str:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"

    head = ("part", "metric", "assistant", "baseline", "vs baseline", "target", "met")
    body = [
        (
            r.part,
            r.metric,
            fmt(r.assistant),
            fmt(r.baseline),
            r.comparison(),
            r.target,
            {True: "yes", False: "NO", None: ""}[r.met],
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(
            str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in [head, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r.metric}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["notes:", *notes] if notes else []))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"parts to run: {', '.join(PARTS)} (default: all)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per side for chat speed and the TUI")
    parser.add_argument("--max-tokens", type=int, default=128, help="reply length for the decode measurements")
    parser.add_argument("--threads", type=int, default=0, help="threads for the chat comparison (0: the default)")
    parser.add_argument("--no-cli", action="store_true", help="skip `assistant chat --json` in the chat part")
    parser.add_argument(
        "--full", action="store_true", help="recall part: also grow the index to 100,000 messages (several minutes)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    parts = args.parts or list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")

    from bench import (
        chat_checked,
        chat_speed,
        check_cli,
        check_grounding,
        check_privacy,
        check_stream,
        learn_speed,
        multi_turn,
        oneshot,
        personal,
        plugins,
        quality,
        recall,
        rss,
        tui_frame,
    )

    runners: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], list[Row]]]] = {
        "chat": (
            lambda: chat_speed.run(args.reps, args.max_tokens, args.threads or None, cli=not args.no_cli),
            chat_speed.rows,
        ),
        "checked": (lambda: chat_checked.run(reps=max(4, args.reps)), chat_checked.rows),
        "threads": (lambda: chat_speed.thread_study(reps=max(2, args.reps - 2)), chat_speed.thread_rows),
        "rss": (lambda: rss.run(reps=max(2, args.reps - 2), max_tokens=args.max_tokens), rss.rows),
        "recall": (
            lambda: recall.run(full=args.full, reps=max(2, args.reps - 2), max_tokens=min(64, args.max_tokens)),
            recall.rows,
        ),
        "oneshot": (lambda: oneshot.run(args.reps), oneshot.rows),
        "multiturn": (lambda: multi_turn.run(reps=max(1, (args.reps - 1) // 2)), multi_turn.rows),
        "quality": (lambda: quality.run(), quality.rows),
        "tui": (lambda: tui_frame.run(args.reps), tui_frame.rows),
        "grounding": (check_grounding.run, check_grounding.rows),
        "privacy": (lambda: check_privacy.run(reps=max(3, args.reps)), check_privacy.rows),
        "checkcli": (check_cli.run, check_cli.rows),
        "stream": (lambda: check_stream.run(reps=max(3, args.reps)), check_stream.rows),
        "personal": (lambda: personal.run(reps=max(2, args.reps - 3)), personal.rows),
        "learn": (lambda: learn_speed.run(reps=max(1, args.reps - 3)), learn_speed.rows),
        "plugins": (lambda: plugins.run(reps=max(5, args.reps * 2)), plugins.rows),
    }
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
    }
    rows: list[Row] = []
    for part in parts:
        run, to_rows = runners[part]
        log(f"[{part}]")
        part_started = time.perf_counter()
        window = CpuWindow()
        try:
            results[part] = run()
            rows += to_rows(results[part])
        except Exception as exc:  # one broken part must not hide the others' figures
            log(f"  {part} failed: {type(exc).__name__}: {exc}")
            results[part] = {"error": f"{type(exc).__name__}: {exc}"}
            rows.append(Row(part, "(failed)", None, None, "", "diff", note=f"{type(exc).__name__}: {exc}"[:200]))
        results[part]["seconds"] = round(time.perf_counter() - part_started, 1)
        results[part]["cpu"] = cpu = window.stop()
        log(f"  {part}: {results[part]['seconds']} s; other processes kept {cpu['others_cores']} cores busy")
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["rows"] = [
        {k: getattr(r, k) for k in ("part", "metric", "assistant", "baseline", "unit", "target", "met", "note")}
        | {"vs_baseline": r.comparison()}
        for r in rows
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    m = results["machine"]
    print(f"\n{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; load average at start {m['load_average_start']}")
    print(table(rows))
    noise = ", ".join(f"{p} {results[p]['cpu']['others_cores']}" for p in parts)
    print(f"cores kept busy by other processes during each part (noise): {noise}")
    print(f"\n{results['seconds']:.0f} s in all; details in {args.output}")


if __name__ == "__main__":
    main()
