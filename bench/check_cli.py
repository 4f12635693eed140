"""`assistant check` throughput: 2,000 realistic lines through the real command, with and without context.

The lines (``bench/check_cli_data.py``): 300-500 character replies, about one in three with personal data or a
secret; "with context" adds the ~800-character context the grounding set gives their made-up user (some five
lines share each, far apart in the file). Each case runs the console script as a user would (``assistant check
--json < file > answers``), once single-job and once with ``--jobs 0`` (one worker per core), and is timed from
start to exit: start-up and model loading are included, as a user waits for them. Its CPU seconds are recorded
too (with --jobs, the workers' count only when the command waited for them): on a busy machine they say more than
the wall clock. The answers are checked: one line per input, the same with either job count.

Baseline, in the same run: the privacy detector alone (``find_pii`` and the "redact" policy) over the same 2,000
texts in this process, models already loaded: the cost every line pays whatever else is checked, so "vs baseline"
says how close the whole command comes to it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import Row, child_env, log, temp_home, venv_bin

LINES = 2000
CASES = (("with context", True), ("no context", False))
JOBS = (1, 0)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_cli(path: Path, jobs: int, env: dict[str, str], out: Path) -> tuple[float, float]:
    """Seconds from start to exit of `assistant check --json --jobs N < path > out`, and its CPU seconds (its
    workers' too when it waited for them: a busy machine inflates the first, barely the second)."""
    with path.open("rb") as stdin, out.open("wb") as stdout:
        cpu = _children_cpu()
        started = time.perf_counter()
        done = subprocess.run(
            [str(venv_bin("assistant")), "check", "--json", "--jobs", str(jobs)],
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - started
        cpu = _children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"assistant check exited {done.returncode}: {done.stderr.decode()[-300:]}")
    return seconds, cpu


def _privacy_alone(texts: list[dict[str, Any]]) -> float:
    """Lines per second of the privacy detector alone, in this process, after a warm-up."""
    from assistant.checks import privacy

    privacy.find_pii("Warm-up: reach me at warm@example.com.")
    started = time.perf_counter()
    for line in texts:
        findings = privacy.find_pii(line["text"])
        if findings:
            privacy.apply_policy(line["text"], findings, line.get("user_inputs", []), "redact")
    return len(texts) / (time.perf_counter() - started)


def run(lines: int = LINES) -> dict[str, Any]:
    from bench.check_cli_data import build

    result: dict[str, Any] = {"lines": lines, "cores": os.cpu_count(), "cases": {}}
    with temp_home() as home:
        home.mkdir(parents=True)
        env = child_env(home)
        baseline: list[float] = []
        for name, context in CASES:
            data = build(lines, context=context)
            path = home.parent / f"{'context' if context else 'plain'}.jsonl"
            path.write_text("".join(json.dumps(line) + "\n" for line in data), encoding="utf-8")
            baseline.append(_privacy_alone(data))
            answers: dict[int, bytes] = {}
            case: dict[str, Any] = {
                "text_chars": round(sum(len(d["text"]) for d in data) / len(data)),
                "context_chars": round(sum(sum(map(len, d.get("context", []))) for d in data) / len(data)),
            }
            for jobs in JOBS:
                out = home.parent / f"answers-{jobs}.jsonl"
                seconds, cpu = _run_cli(path, jobs, env, out)
                answers[jobs] = out.read_bytes()
                got = answers[jobs].count(b"\n")
                if got != lines:
                    raise RuntimeError(f"{name}, --jobs {jobs}: {got} answers for {lines} lines")
                case[f"jobs_{jobs}"] = {
                    "seconds": round(seconds, 2),
                    "lines_per_s": round(lines / seconds, 1),
                    "cpu_s": round(cpu, 2),
                }
                rate = lines / seconds
                log(f"  {name}, --jobs {jobs}: {lines} lines in {seconds:.1f} s ({rate:.0f} lines/s), CPU {cpu:.1f} s")
            case["same_answers"] = len(set(answers.values())) == 1
            result["cases"][name] = case
        result["privacy_alone_per_s"] = round(sorted(baseline)[len(baseline) // 2], 1)
    return result


def rows(result: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    base = result["privacy_alone_per_s"]
    cores = result["cores"]
    for name, case in result["cases"].items():
        for jobs in JOBS:
            figures = case[f"jobs_{jobs}"]
            label = "1 job" if jobs == 1 else f"--jobs 0 ({cores} workers)"
            out.append(
                Row(
                    "checkcli",
                    f"lines/s, {name}, {label}",
                    figures["lines_per_s"],
                    base,
                    "lines/s",
                    "ratio",
                    note=f"{result['lines']} lines in {figures['seconds']} s (CPU {figures['cpu_s']} s), start-up "
                    f"included; text ~{case['text_chars']} chars, context ~{case['context_chars']} chars; same "
                    f"answers with either job count: {case['same_answers']}; baseline: the privacy detector alone",
                )
            )
    return out
