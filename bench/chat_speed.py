"""Decode speed and time to first token: the assistant against raw llama-cpp-python, same model, prompt and threads.

Every run is measured the same way from outside: the clock starts just before the request, time to first token
is the first streamed piece, and decode speed is the tokens after the first piece divided by the time from the
first piece to the last. The KV cache is reset before every run (raw and assistant alike), so each one processes
the whole prompt, as a new conversation does. Temperature 0: every run generates the same greedy tokens.

The thread study runs raw ``Llama.generate`` with 1 and 2 threads, idle and beside a process that spins on one
core (what the TUI, an embedder or another program does to the model's cores).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import (
    PROMPT,
    SEED,
    CpuWindow,
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


@dataclass(slots=True)
class Run:
    ttft_ms: float
    decode_tps: float | None
    tokens: int
    text: str
    own_ttft_ms: float | None = None  # what the assistant itself reported, when it reports
    own_tps: float | None = None
    wall_s: float | None = None
    others_cores: float | None = None  # cores other processes kept busy during this run (the noise)
    setup_ms: float | None = None  # the assistant's own work before generation: store the message, plan the prompt
    # CPU time this process spent per decoded token (first to last piece). Other processes slow the wall clock
    # far more than they change this, so it compares the two sides' own work even on a busy machine.
    cpu_ms_per_token: float | None = None


def timed(pieces: Iterable[tuple[str, int]], started: float, decode_deadline_s: float | None = None) -> Run:
    """Consume (text, tokens) pieces, timing the first and the last piece that carried tokens."""
    first = last = None
    first_cpu = last_cpu = 0.0
    first_tokens = total = 0
    parts: list[str] = []
    for text, tokens in pieces:
        if not tokens:
            parts.append(text)
            continue
        now, cpu = time.perf_counter(), time.process_time()
        if first is None:
            first, first_tokens, first_cpu = now, tokens, cpu
        last, last_cpu = now, cpu
        total += tokens
        parts.append(text)
        if decode_deadline_s is not None and now - first > decode_deadline_s:
            break
    if first is None or last is None:
        return Run(ttft_ms=float("nan"), decode_tps=None, tokens=0, text="")
    decode_s = last - first
    tps = (total - first_tokens) / decode_s if decode_s > 0 and total > first_tokens else None
    decoded = total - first_tokens
    return Run(
        ttft_ms=round((first - started) * 1000, 1),
        decode_tps=round(tps, 2) if tps else None,
        tokens=total,
        text="".join(parts),
        cpu_ms_per_token=round((last_cpu - first_cpu) * 1000 / decoded, 3) if decoded > 0 else None,
    )


def load_raw(path: Path, n_ctx: int, threads: int, batch_threads: int | None = None) -> Any:
    """The baseline: llama-cpp-python as its README shows it, nothing of the assistant's."""
    from llama_cpp import Llama

    batch = batch_threads or threads
    return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=batch, verbose=False)


def raw_completion(llm: Any, prompt: str, max_tokens: int) -> Run:
    llm.reset()
    started = time.perf_counter()
    stream = llm.create_completion(prompt, stream=True, max_tokens=max_tokens, temperature=0.0, seed=SEED)
    # One streamed chunk per token (an incomplete UTF-8 character can merge two; rare in English prose).
    return timed(((c["choices"][0]["text"], 1 if c["choices"][0]["text"] else 0) for c in stream), started)


def _generate(llm: Any, prompt: str, max_tokens: int) -> Iterator[tuple[str, int]]:
    import llama_cpp

    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    vocab = llm._model.vocab
    generator = llm.generate(tokens, temp=0.0)
    try:
        for n, token in enumerate(generator, 1):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            yield "", 1
            if n >= max_tokens:
                break
    finally:
        generator.close()


def raw_generate(llm: Any, prompt: str, max_tokens: int, decode_deadline_s: float | None = None) -> Run:
    """The floor: llama.cpp's token loop with no detokenizing at all."""
    llm.reset()
    started = time.perf_counter()
    return timed(_generate(llm, prompt, max_tokens), started, decode_deadline_s)


def assistant_turn(session: Any, text: str) -> Run:
    """A whole chat turn in-process: store the message, plan the prompt, stream, store the reply."""
    session.load().llm.reset()
    started = time.perf_counter()
    turn = session.start_turn(text)
    setup_ms = (time.perf_counter() - started) * 1000
    run = timed(((c.text, c.tokens) for c in turn.stream()), started)
    assert turn.result is not None
    run.own_ttft_ms, run.own_tps = turn.result.ttft_ms, turn.result.tokens_per_s
    run.setup_ms = round(setup_ms, 2)
    return run


def cli_chat(home: Path, text: str, threads: int, max_tokens: int) -> Run:
    """`assistant chat --json` in a fresh process; its own ttft_ms / tokens_per_s (model load excluded)."""
    env = child_env(home, threads=threads, max_tokens=max_tokens, temperature=0, seed=SEED)
    started = time.perf_counter()
    proc = subprocess.run(
        [str(venv_bin("assistant")), "chat", "--json", text], env=env, capture_output=True, text=True, timeout=300
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"assistant chat failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    data = json.loads(proc.stdout[proc.stdout.index("{") :])
    return Run(
        ttft_ms=data["ttft_ms"],
        decode_tps=data["tokens_per_s"],
        tokens=data["completion_tokens"],
        text=data["reply"],
        own_ttft_ms=data["ttft_ms"],
        own_tps=data["tokens_per_s"],
        wall_s=round(wall, 2),
    )


def _summary(runs: list[Run]) -> dict[str, object]:
    return {
        "ttft_ms": median([r.ttft_ms for r in runs]),
        "ttft_ms_range": spread([r.ttft_ms for r in runs]),
        "decode_tps": median([r.decode_tps for r in runs if r.decode_tps]),
        "decode_tps_range": spread([r.decode_tps for r in runs if r.decode_tps]),
        "tokens": median([r.tokens for r in runs]),
        "own_ttft_ms": median([r.own_ttft_ms for r in runs if r.own_ttft_ms is not None]),
        "own_tps": median([r.own_tps for r in runs if r.own_tps is not None]),
        "wall_s": median([r.wall_s for r in runs if r.wall_s is not None]),
        "cpu_ms_per_token": median([r.cpu_ms_per_token for r in runs if r.cpu_ms_per_token]),
        "setup_ms": median([r.setup_ms for r in runs if r.setup_ms is not None]),
        "others_cores": median([r.others_cores for r in runs if r.others_cores is not None]),
        "runs": [asdict(r) | {"text": r.text[:80]} for r in runs],
    }


def run(
    reps: int = 5, max_tokens: int = 128, threads: int | None = None, cli: bool = True, ttft_reps: int = 8
) -> dict[str, Any]:
    """Alternate raw completion, raw generate, the in-process Session and the CLI; medians of ``reps`` each.

    Time to first token is compared on every run plus ``ttft_reps`` extra short A/B pairs.
    """
    from assistant.config import Settings
    from assistant.session import Session
    from storage.db import open_store

    with temp_home() as home:
        settings = Settings(max_tokens=max_tokens, temperature=0.0, seed=SEED, threads=threads or 0)
        threads = settings.effective_threads()
        path = model_path(home)
        store = open_store(home)
        # Memory off: this part measures the chat turn against raw llama.cpp on the same prompt; the `recall` part
        # measures a turn with memory on (which reads a longer prompt: the recalled snippets).
        session = Session(store, settings, home=home, use_memory=False)
        session.load()
        llm = load_raw(path, settings.context_size, threads)

        # Warm up both (page cache, allocations) and take the exact prompt the assistant renders.
        warm = session.start_turn(PROMPT)
        for _ in warm.stream():
            pass
        prompt = warm.plan.prompt
        raw_completion(llm, prompt, 16)
        short = Session(store, settings.model_copy(update={"max_tokens": 4}), home=home, use_memory=False)
        short._backend = session.load()  # the same loaded model, shorter replies
        ttft: dict[str, list[float]] = {"raw_completion": [], "assistant_session": []}
        prompt_tokens = len(llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))

        # Extra short runs only for time to first token, which is the noisier figure.
        for rep in range(ttft_reps):
            for kind in (
                ("raw_completion", "assistant_session") if rep % 2 == 0 else ("assistant_session", "raw_completion")
            ):
                r = raw_completion(llm, prompt, 4) if kind == "raw_completion" else assistant_turn(short, PROMPT)
                ttft[kind].append(r.ttft_ms)
            log(
                f"  ttft rep {rep + 1}/{ttft_reps} raw {ttft['raw_completion'][-1]:7.1f} ms  "
                f"assistant {ttft['assistant_session'][-1]:7.1f} ms"
            )

        kinds = ["raw_completion", "assistant_session", "raw_generate"] + (["assistant_cli"] if cli else [])
        runs: dict[str, list[Run]] = {k: [] for k in kinds}
        load_before = load_average()
        cli_error: str | None = None
        for rep in range(reps):
            order = kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]  # rotate: no kind always goes first
            for kind in order:
                window = CpuWindow()
                if kind == "raw_completion":
                    r = raw_completion(llm, prompt, max_tokens)
                elif kind == "raw_generate":
                    r = raw_generate(llm, prompt, max_tokens)
                elif kind == "assistant_session":
                    r = assistant_turn(session, PROMPT)
                else:
                    try:
                        r = cli_chat(home, PROMPT, threads, max_tokens)
                    except (RuntimeError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
                        cli_error = f"{type(exc).__name__}: {exc}"[:300]
                        log(f"  assistant chat --json failed, skipped from now on: {cli_error}")
                        kinds.remove(kind)
                        del runs[kind]
                        continue
                r.others_cores = window.stop()["others_cores"]
                runs[kind].append(r)
                log(f"  chat rep {rep + 1}/{reps} {kind:18} ttft {r.ttft_ms:7.1f} ms  decode {r.decode_tps} tok/s")
        session.close()
        store.close()
        llm.close()

    result: dict[str, Any] = {
        "threads": threads,
        "max_tokens": max_tokens,
        "reps": reps,
        "prompt_tokens": prompt_tokens,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "cli_error": cli_error,
        "same_text": len({r.text.strip() for r in runs["raw_completion"] + runs["assistant_session"]}) == 1,
    }
    for kind, items in runs.items():
        result[kind] = _summary(items)
    pairs = list(zip(runs["raw_completion"], runs["assistant_session"], strict=True))
    ttft_pairs = [(r.ttft_ms, a.ttft_ms) for r, a in pairs] + list(
        zip(ttft["raw_completion"], ttft["assistant_session"], strict=True)
    )
    diffs = [a - r for r, a in ttft_pairs]
    ratios = [a.decode_tps / r.decode_tps for r, a in pairs if a.decode_tps and r.decode_tps]
    cpu_ratios = [
        a.cpu_ms_per_token / r.cpu_ms_per_token for r, a in pairs if a.cpu_ms_per_token and r.cpu_ms_per_token
    ]
    result["paired"] = {
        "ttft_pairs": len(ttft_pairs),
        "ttft_raw_ms": median([r for r, _ in ttft_pairs]),
        "ttft_assistant_ms": median([a for _, a in ttft_pairs]),
        "ttft_diff_ms": median(diffs),
        "ttft_diff_ms_range": spread(diffs),
        "ttft_ratio": median([a / r for r, a in ttft_pairs]),
        "decode_ratio": round(statistics.median(ratios), 4) if ratios else None,
        "decode_ratio_range": spread(ratios),
        "cpu_per_token_ratio": round(statistics.median(cpu_ratios), 4) if cpu_ratios else None,
        "cpu_per_token_ratio_range": spread(cpu_ratios),
    }
    return result


def rows(result: dict[str, Any]) -> list[Row]:
    raw, ses, gen, paired = (result[k] for k in ("raw_completion", "assistant_session", "raw_generate", "paired"))
    t = f"{result['threads']} thr, {result['max_tokens']} tok"
    decode = Row(
        "chat",
        f"decode tok/s: Session turn vs create_completion ({t})",
        ses["decode_tps"],
        raw["decode_tps"],
        "tok/s",
        "ratio",
        ">= 95%",
        paired=paired["decode_ratio"],
    )
    decode.met = decode.paired >= 0.95 if decode.paired is not None else None
    first = Row(
        "chat",
        f"first token ms: Session turn vs create_completion ({paired['ttft_pairs']} pairs)",
        paired["ttft_assistant_ms"],
        paired["ttft_raw_ms"],
        "ms",
        "diff",
        "<= +50 ms",
        paired=paired["ttft_diff_ms"],
        note=f"ratio {paired['ttft_ratio']}",
    )
    first.met = first.paired <= 50 if first.paired is not None else None
    cpu = Row(
        "chat",
        "decode CPU ms/token: Session turn vs create_completion (lower is better)",
        ses["cpu_ms_per_token"],
        raw["cpu_ms_per_token"],
        "ms",
        "ratio",
        "<= 105%",
        paired=paired["cpu_per_token_ratio"],
        note="CPU time of this process, barely moved by other processes' load",
    )
    cpu.met = cpu.paired <= 1 / 0.95 if cpu.paired is not None else None
    out = [
        decode,
        cpu,
        first,
        Row(
            "chat",
            "decode tok/s: Session turn vs bare Llama.generate loop",
            ses["decode_tps"],
            gen["decode_tps"],
            "tok/s",
            "ratio",
        ),
    ]
    if result.get("cli_error"):
        out.append(Row("chat", "`assistant chat --json`", None, None, "", "diff", note=result["cli_error"]))
    if "assistant_cli" in result:
        cli = result["assistant_cli"]
        row = Row(
            "chat",
            "decode tok/s: `assistant chat --json` (own figure) vs raw",
            cli["own_tps"],
            raw["decode_tps"],
            "tok/s",
            "ratio",
            ">= 95%",
        )
        if cli["own_tps"] and raw["decode_tps"]:
            row.met = cli["own_tps"] / raw["decode_tps"] >= 0.95
        out.append(row)
        row = Row(
            "chat",
            "first token ms: `assistant chat --json` (own figure) vs raw",
            cli["own_ttft_ms"],
            raw["ttft_ms"],
            "ms",
            "diff",
            "<= +50 ms",
            note="own figure excludes model load",
        )
        if cli["own_ttft_ms"] is not None and raw["ttft_ms"] is not None:
            row.met = cli["own_ttft_ms"] - raw["ttft_ms"] <= 50
        out.append(row)
    return out


def thread_study(reps: int = 3, max_tokens: int = 48, decode_deadline_s: float = 4.0) -> dict[str, Any]:
    """Decode and first token with 1 and 2 threads, as the machine is and beside one spinning core (raw llama.cpp).

    "idle" means no load added by the benchmark; on a shared machine other processes may still run (see
    ``others_cores`` of each run).
    """
    from assistant.config import Settings

    with temp_home() as home:
        path = model_path(home)
        settings = Settings()
        # "1+2b": one thread to decode, two to read the prompt (compute-bound, a short burst).
        configs = {"1": (1, 1), "2": (2, 2), "1+2b": (1, 2)}
        llms = {t: load_raw(path, settings.context_size, *c) for t, c in configs.items()}
        backend = load_model(home)
        text = backend.format_chat(
            [{"role": "system", "content": settings.system_prompt}, {"role": "user", "content": PROMPT}]
        )
        backend.close()
        for llm in llms.values():
            raw_generate(llm, text, 8)
        runs: dict[str, list[Run]] = {f"{cond}_{t}": [] for cond in ("idle", "busy") for t in configs}
        for rep in range(reps):
            for cond in ("idle", "busy"):
                spinner = None
                if cond == "busy":
                    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    time.sleep(0.5)
                try:
                    for t in list(configs) if rep % 2 == 0 else list(configs)[::-1]:
                        window = CpuWindow()
                        r = raw_generate(llms[t], text, max_tokens, decode_deadline_s)
                        r.others_cores = window.stop()["others_cores"]
                        runs[f"{cond}_{t}"].append(r)
                        log(
                            f"  threads rep {rep + 1}/{reps} {cond} {t} thr: ttft {r.ttft_ms:7.1f} ms  "
                            f"decode {r.decode_tps} tok/s"
                        )
                finally:
                    if spinner is not None:
                        spinner.kill()
                        spinner.wait()
        for llm in llms.values():
            llm.close()
    return {
        "default_threads": settings.effective_threads(),
        "max_tokens": max_tokens,
        "reps": reps,
        "load_average_after": load_average(),
        **{k: _summary(v) for k, v in runs.items()},
    }


def thread_rows(result: dict[str, Any]) -> list[Row]:
    out = []
    for cond in ("idle", "busy"):
        one, two = result[f"{cond}_1"], result[f"{cond}_2"]
        label = "no added load" if cond == "idle" else "+1 spinning core"
        out.append(
            Row(
                "threads",
                f"decode tok/s, 2 thr vs 1 thr, {label}",
                two["decode_tps"],
                one["decode_tps"],
                "tok/s",
                "ratio",
                note=f"default is {result['default_threads']} thr; others kept {one['others_cores']} / "
                f"{two['others_cores']} cores busy (1 / 2 thr runs)",
            )
        )
        out.append(
            Row("threads", f"first token ms, 2 thr vs 1 thr, {label}", two["ttft_ms"], one["ttft_ms"], "ms", "diff")
        )
        mixed = result.get(f"{cond}_1+2b")
        if mixed:
            out.append(
                Row(
                    "threads",
                    f"first token ms, 1 thr + 2 for the prompt vs 1 thr, {label}",
                    mixed["ttft_ms"],
                    one["ttft_ms"],
                    "ms",
                    "diff",
                    note=f"decode {mixed['decode_tps']} tok/s",
                )
            )
    return out
