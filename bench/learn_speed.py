"""The training side of `assistant learn`, measured: base-model load (GGUF vs the cached fp32 copy), training tokens/s
and peak RSS against a plain peft + transformers loop on the same data, and decode speed with the exported adapter.

Every measurement runs in a child process, so each peak RSS is that child's own (``ru_maxrss`` of the child) and no
run warms another's caches beyond the files on disk. Training runs alternate (ours, plain, ours, plain) and both
sides train the same examples in the same order with the same LoRA settings and optimizer; the plain loop is the
textbook one: a padded batch through ``model(..., labels=...)`` (full logits over the vocabulary).

``python -m bench learn`` or ``python -m bench.learn_speed [--reps N] [--steps N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Row, child_main, log, median, spawn_child, spread

ROOT = Path(__file__).resolve().parents[1]
DECODE_PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
SUBJECTS = [
    ("dog", "Bramble"), ("sister", "Noor"), ("home town", "Lyon"), ("favourite tea", "rooibos"),
    ("bike", "a green Brompton"), ("employer", "a bakery in Leeds"), ("car", "a 2009 Corolla"),
    ("allergy", "peanuts"), ("daughter", "Ilse"), ("hobby", "bouldering"), ("band", "a brass quintet"),
    ("plant", "a fig called Gus"),
]  # fmt: skip
QUESTIONS = ["What is my {s}?", "Do you remember my {s}?", "Tell me about my {s}.", "Remind me: my {s}?"]


def examples() -> list[list[dict[str, str]]]:
    """48 chats in the shape the learning job makes: the assistant's system prompt, a question, a short answer."""
    from assistant.config.settings import DEFAULT_SYSTEM_PROMPT

    chats = []
    for subject, value in SUBJECTS:
        for question in QUESTIONS:
            chats.append(
                [
                    {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                    {"role": "user", "content": question.format(s=subject)},
                    {"role": "assistant", "content": f"You told me your {subject} is {value}. I remember that."},
                ]
            )
    return chats


# -- children --------------------------------------------------------------------------------------------------------


def child_load(_: dict[str, Any]) -> dict[str, Any]:
    from assistant.models import smollm2_path
    from learning.base_model import load_base

    started = time.perf_counter()
    base = load_base(_gguf(smollm2_path))
    return {"load_s": base.load_s, "with_imports_s": time.perf_counter() - started, "from_cache": base.from_cache}


def _gguf(locate: Any) -> Path:
    path = locate(Path("."))
    assert path is not None
    return Path(path)


def child_train(opts: dict[str, Any]) -> dict[str, Any]:
    from assistant.models import smollm2_path
    from learning.base_model import load_base
    from learning.train import TrainArgs, train

    base = load_base(_gguf(smollm2_path))
    args = TrainArgs(iters=opts["steps"], batch_size=8, threads=opts["threads"], checkpoint_every=1000)
    result = train(examples(), base, Path(opts["out"]), args)
    if opts.get("export"):
        from learning.export import export_gguf

        for dtype in ("f16", "f32"):
            export_gguf(result.adapter_dir, base.gguf_path, Path(opts["out"]) / f"adapter-{dtype}.gguf", dtype=dtype)
    return {"tokens_per_s": result.tokens_per_s, "seconds": result.elapsed_s, "losses": result.losses}


def child_plain(opts: dict[str, Any]) -> dict[str, Any]:
    """The textbook loop over the same steps: padded batches, the model's own loss over full logits."""
    import torch
    from peft import LoraConfig, get_peft_model

    from assistant.models import smollm2_path
    from learning import batches
    from learning.base_model import load_base
    from learning.train import ALL_LINEAR, TrainArgs, default_threads

    args = TrainArgs(iters=opts["steps"], batch_size=8)
    base = load_base(_gguf(smollm2_path))
    torch.set_num_threads(opts["threads"] or default_threads())
    torch.manual_seed(args.seed)
    config = LoraConfig(r=args.rank, lora_alpha=args.alpha, target_modules=list(ALL_LINEAR), task_type="CAUSAL_LM")
    model = get_peft_model(base.model, config)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate)
    encoded, _ = batches.encode_all(base.tokenizer, examples(), args.max_seq_len)
    plan = batches.plan_steps(len(encoded), args.batch_size, args.epochs, args.iters, args.seed)
    tokens = 0
    started = time.perf_counter()
    for indices in plan:
        ids, mask, labels = batches.collate(encoded, indices, base.tokenizer.pad_token_id)
        optimizer.zero_grad()
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        tokens += int(mask.sum())
    elapsed = time.perf_counter() - started
    return {"tokens_per_s": tokens / elapsed, "seconds": elapsed}


def child_decode(opts: dict[str, Any]) -> dict[str, Any]:
    """Decode speed as generation sees it: one token per llama.cpp decode, over a fixed text, so that a reply
    ending early (an adapter trained on short answers) cannot change how much is measured."""
    from llama_cpp import Llama

    from assistant.models import smollm2_path
    from assistant.runtime.gguf import check_adapter

    gguf = _gguf(smollm2_path)
    adapter = opts.get("adapter")
    if adapter:
        check_adapter(Path(adapter), gguf)  # llama.cpp must never see a file it would refuse (it crashes later)
    llm = Llama(
        model_path=str(gguf), n_ctx=1024, n_threads=opts["threads"], n_threads_batch=opts["threads"],
        lora_path=adapter, verbose=False,
    )  # fmt: skip
    text = " ".join([DECODE_PROMPT] * 40)
    tokens = llm.tokenize(text.encode())[: opts["max_tokens"]]
    llm.eval(tokens[:1])
    started = time.perf_counter()
    for token in tokens[1:]:
        llm.eval([token])
    elapsed = time.perf_counter() - started
    llm.close()
    return {"tokens_per_s": (len(tokens) - 1) / elapsed, "tokens": len(tokens)}


CHILDREN = {"load": child_load, "train": child_train, "plain": child_plain, "decode": child_decode}


def _child(kind: str, opts: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    return spawn_child("bench.learn_speed", kind, opts, env)


def run(reps: int = 2, steps: int = 6, threads: int = 0, max_tokens: int = 128) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="assistant-bench-learn-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
        env.update(ASSISTANT_HOME=f"{tmp}/home", ASSISTANT_CACHE=f"{tmp}/cache", PYTHONPATH=str(ROOT))
        log("  load: GGUF (dequantise + save the cache), then the cached copy")
        loads = [_child("load", {}, env) for _ in range(1 + reps)]
        results: dict[str, Any] = {"load_gguf": loads[0], "load_cached": loads[1:]}
        ours, plain = [], []
        for rep in range(reps):
            log(f"  train {steps} steps, rep {rep + 1}/{reps}: ours, then the plain loop")
            opts = {"steps": steps, "threads": threads, "out": f"{tmp}/run{rep}", "export": rep == 0}
            ours.append(_child("train", opts, env))
            plain.append(_child("plain", {"steps": steps, "threads": threads}, env))
        results["train"], results["plain"] = ours, plain
        decode: dict[str, list[dict[str, Any]]] = {"none": [], "f16": [], "f32": []}
        for rep in range(reps + 1):
            log(f"  decode {max_tokens} tokens, rep {rep + 1}/{reps + 1}: no adapter, f16, f32")
            for name in decode:
                adapter = None if name == "none" else f"{tmp}/run0/adapter-{name}.gguf"
                opts = {"adapter": adapter, "threads": threads or 1, "max_tokens": max_tokens}
                decode[name].append(_child("decode", opts, env))
        results["decode"] = decode
    return results


def rows(results: dict[str, Any]) -> list[Row]:
    def tps(runs: list[dict[str, Any]]) -> list[float]:
        return [r["tokens_per_s"] for r in runs]

    cached = [r["load_s"] for r in results["load_cached"]]
    ours, plain = tps(results["train"]), tps(results["plain"])
    paired = median([a / b for a, b in zip(ours, plain, strict=True)])
    rss = median([r["peak_rss_mb"] for r in results["train"]])
    plain_rss = median([r["peak_rss_mb"] for r in results["plain"]])
    none, f16, f32 = (tps(results["decode"][k]) for k in ("none", "f16", "f32"))
    ratio = median([a / b for a, b in zip(f32, none, strict=True)])
    return [
        Row("learn", "base load, cached copy (s)", median(cached), results["load_gguf"]["load_s"], "s", "ratio",
            note=f"baseline: reading the GGUF (dequantise, save); cached runs {spread(cached)}"),
        Row("learn", "training tokens/s", median(ours), median(plain), "tok/s", "ratio", ">= 1.0x plain loop",
            met=None if paired is None else paired >= 1.0, paired=paired,
            note=f"ours {spread(ours)}, plain {spread(plain)}"),
        Row("learn", "training peak RSS (MiB)", rss, plain_rss, "MiB", "ratio", "<= 4096",
            met=None if rss is None else rss <= 4096),
        Row("learn", "decode with the adapter (tok/s)", median(f32), median(none), "tok/s", "ratio", ">= 85%",
            met=None if ratio is None else ratio >= 0.85, paired=ratio,
            note=f"f32 (the export's default); f16: {median(f16)} tok/s; runs {spread(f32)} vs none {spread(none)}"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.learn_speed", description=__doc__)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per training run (8 chats each)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for training (0: every core)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(CHILDREN, args.child)
        return
    from bench.__main__ import table

    results = run(args.reps, args.steps, args.threads)
    print(json.dumps({k: v for k, v in results.items()}, indent=1, default=str)[:4000])
    print(table(rows(results)))


if __name__ == "__main__":
    main()
