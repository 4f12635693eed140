"""Peak memory of one chat: `assistant chat` in a subprocess against a raw llama-cpp-python script doing the same.

The peak is the child's own maximum resident set size as the kernel records it (``wait4``), so nothing is
sampled and nothing is missed between samples. Both sides load the same model with the same context size and
thread count and generate the same greedy reply to the same rendered prompt.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import (
    PROMPT,
    SEED,
    Row,
    child_env,
    load_average,
    load_model,
    log,
    median,
    model_path,
    spread,
    temp_home,
    venv_bin,
)

TARGET_MB = 500

RAW_SCRIPT = """
import sys
from llama_cpp import Llama

path, prompt = sys.argv[1], sys.argv[5]
n_ctx, threads, max_tokens = (int(a) for a in sys.argv[2:5])
llm = Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
for chunk in llm.create_completion(prompt, stream=True, max_tokens=max_tokens, temperature=0.0, seed=42):
    sys.stdout.write(chunk["choices"][0]["text"])
"""


# Runs the command and reports its peak RSS. The command must not be started from the benchmark process itself:
# subprocess starts children with vfork, and at exec Linux carries the parent's RSS high-water mark into the
# child's ru_maxrss, so every child of a process holding two loaded models "peaked" at that process's size.
# This small helper is the parent instead; its own ~15 MB high-water mark is far below any figure measured here.
PEAK_HELPER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def peak_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd``; return its peak RSS in MB and its wall time in seconds."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK_HELPER, *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    try:
        maxrss_kib, code = (int(x) for x in proc.stdout.split())
    except ValueError:
        code, maxrss_kib = -1, 0
    if proc.returncode != 0 or code != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({code}): {proc.stderr.strip()[-500:]}")
    return round(maxrss_kib / 1024, 1), round(wall, 2)  # ru_maxrss is in KiB on Linux


def run(reps: int = 3, max_tokens: int = 192) -> dict[str, Any]:
    from assistant.config import Settings
    settings = Settings()
    threads = settings.effective_threads()
    with temp_home() as home:
        path = model_path(home)
        backend = load_model(home)
        prompt = backend.format_chat(
            [{"role": "system", "content": settings.system_prompt}, {"role": "user", "content": PROMPT}]
        )
        backend.close()
        # The default settings (default model, context and threads); only the reply is pinned for repeatability.
        env = child_env(home, max_tokens=max_tokens, temperature=0, seed=SEED)
        commands = {
            "assistant_chat": [str(venv_bin("assistant")), "chat", PROMPT],
            "raw_script": [
                sys.executable,
                "-c",
                RAW_SCRIPT,
                str(path),
                str(settings.context_size),
                str(threads),
                str(max_tokens),
                prompt,
            ],
        }
        samples: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
        for rep in range(reps):
            for kind in list(commands) if rep % 2 == 0 else list(commands)[::-1]:
                rss, wall = peak_rss(commands[kind], env)
                samples[kind].append((rss, wall))
                log(f"  memory rep {rep + 1}/{reps} {kind:15} peak {rss:7.1f} MB  wall {wall:5.2f} s")
    result: dict[str, Any] = {
        "threads": threads,
        "n_ctx": settings.context_size,
        "max_tokens": max_tokens,
        "reps": reps,
        "load_average_after": load_average(),
    }
    for kind, values in samples.items():
        result[kind] = {
            "peak_rss_mb": median([v[0] for v in values]),
            "peak_rss_mb_range": spread([v[0] for v in values]),
            "wall_s": median([v[1] for v in values]),
            "wall_s_range": spread([v[1] for v in values]),
        }
    return result


def rows(result: dict[str, Any]) -> list[Row]:
    a, b = result["assistant_chat"], result["raw_script"]
    return [
        Row(
            "rss",
            "peak RSS MB, `assistant chat` vs raw script",
            a["peak_rss_mb"],
            b["peak_rss_mb"],
            "MB",
            "diff",
            f"<= {TARGET_MB} MB",
            a["peak_rss_mb"] is not None and a["peak_rss_mb"] <= TARGET_MB,
        ),
        Row("rss", "wall s (start to exit), `assistant chat` vs raw", a["wall_s"], b["wall_s"], "s", "diff"),
    ]
