"""Personalization: the learning job on made-up users (``bench.personal_data``), facts said in passing over about
100 new exchanges each, with the default model on this CPU.

Per user, in child processes (each peak RSS is that child's own): the real job (``learning.job.run``) on a fresh
data dir with the history imported; then a plain peft + transformers loop (padded batches through
``model(..., labels=...)``) on the very chats the job trained on, for the first steps of the same plan, with the
same LoRA settings and optimizer; then decode speed through llama.cpp with the new adapter and without (A/B pairs).

Reported: held-out probe accuracy of the base model and of the new adapter (the job's own evaluation: greedy,
transformers, the assistant's system prompt), general control accuracy and perplexity drift against the base
model, the job's wall time, its training tokens/s against the plain loop's, peak RSS and decode speed.

``python -m bench personal`` or ``python -m bench.personal [--users maren,dev] [--exchanges 100]``.
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
from bench.personal_data import USERS, history

ROOT = Path(__file__).resolve().parents[1]
EXCHANGES = 100
PLAIN_STEPS = 8
DECODE_PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."


def child_job(opts: dict[str, Any]) -> dict[str, Any]:
    """Import the user's history and run the job; keep the chats it trained on for the plain loop."""
    import learning.train
    from assistant.app_store import open_store
    from learning import job
    from learning.cli import train_args
    from storage.transfer import import_bytes

    home = Path(opts["home"])
    with open_store(home) as store:
        import_bytes(store, json.dumps(history(opts["user"], opts["exchanges"])).encode(), "history.json")
    trained: list[Any] = []
    real_train = learning.train.train

    def capture(examples: Any, *args: Any, **kwargs: Any) -> Any:
        trained.extend(examples)
        return real_train(examples, *args, **kwargs)

    learning.train.train = capture
    started = time.perf_counter()
    report = job.run(home, args=train_args(tuple(opts["recipe"])))
    wall = time.perf_counter() - started
    Path(opts["chats"]).write_text(json.dumps(trained))
    data = report.to_dict()
    evaluation = data["evaluation"]
    return {
        "status": data["status"],
        "message": data["message"],
        "wall_s": wall,
        "timings": data["timings"],
        "training": data["training"],
        "examples": data["examples"],
        "verification": {k: data["verification"].get(k) for k in ("passed", "shift_cosine", "kl", "top1")},
        "strength": evaluation.get("strength", 1.0),  # the candidate's scores are the adapter's at this strength
        "tried": evaluation.get("tried", []),
        "scores": {
            name: ({k: s[k] for k in ("personal", "controls", "perplexity")} if s else None)
            for name, s in evaluation.items()
            if name in ("base", "candidate")
        },  # fmt: skip
        "probes": [(a["question"], a["answer"], a["passed"]) for a in evaluation["candidate"]["probes"]],
        "adapter": data["export"].get("path"),
    }


def child_plain(opts: dict[str, Any]) -> dict[str, Any]:
    """The textbook loop on the job's chats: its plan's first steps, padded batches, the model's own loss."""
    import torch
    from peft import LoraConfig, get_peft_model

    from assistant.models import smollm2_path
    from learning import batches
    from learning.base_model import load_base
    from learning.cli import train_args
    from learning.train import default_threads

    args = train_args(tuple(opts["recipe"]))
    chats = json.loads(Path(opts["chats"]).read_text())
    gguf = smollm2_path(Path("."))
    assert gguf is not None
    base = load_base(gguf)
    torch.set_num_threads(args.threads or default_threads())
    torch.manual_seed(args.seed)
    config = LoraConfig(
        r=args.rank, lora_alpha=int(args.alpha), target_modules=list(args.target_modules), task_type="CAUSAL_LM"
    )
    model = get_peft_model(base.model, config)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate)
    encoded, _ = batches.encode_all(base.tokenizer, chats, args.max_seq_len)
    plan = batches.plan_steps(len(encoded), args.batch_size, args.epochs, args.iters, args.seed)[: opts["steps"]]
    pad = base.tokenizer.pad_token_id if base.tokenizer.pad_token_id is not None else 0
    tokens = 0
    started = time.perf_counter()
    for indices in plan:
        ids, mask, labels = batches.collate(encoded, indices, pad)
        optimizer.zero_grad()
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        tokens += int(mask.sum())
    elapsed = time.perf_counter() - started
    return {"tokens_per_s": tokens / elapsed, "seconds": elapsed, "steps": len(plan)}


def child_decode(opts: dict[str, Any]) -> dict[str, Any]:
    from assistant.config import Settings
    from assistant.models import ModelSpec, smollm2_path
    from assistant.runtime import load_backend
    from assistant.runtime.base import GenerationParams

    gguf = smollm2_path(Path("."))
    assert gguf is not None
    adapter = Path(opts["adapter"]) if opts.get("adapter") else None
    spec = ModelSpec(name="smollm2", path=gguf, source="bundled")
    backend = load_backend(spec, Settings(threads=opts["threads"]), adapter, n_ctx=1024)
    prompt = backend.format_chat([{"role": "user", "content": DECODE_PROMPT}])
    params = GenerationParams(temperature=0, max_tokens=opts["max_tokens"], seed=42, cut_loops=False)
    first, after_first = 0.0, 0
    for chunk in backend.stream(prompt, params):
        if first:
            after_first += chunk.tokens
        elif chunk.tokens:
            first = time.perf_counter()
    end = time.perf_counter()
    backend.close()
    return {"tokens_per_s": after_first / (end - first) if after_first else 0.0}


CHILDREN = {"job": child_job, "plain": child_plain, "decode": child_decode}


def _child(kind: str, opts: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    return spawn_child("bench.personal", kind, opts, env)


def run(
    users: list[str] | None = None,
    exchanges: int = EXCHANGES,
    reps: int = 2,
    max_tokens: int = 128,
    recipe: list[str] | None = None,
) -> dict:
    """``recipe``: ``KEY=VALUE`` changes to the job's training settings (as ``assistant learn --train``)."""
    users = users or list(USERS)
    recipe = recipe or []
    results: dict[str, Any] = {"users": {}, "exchanges": exchanges, "recipe": recipe}
    with tempfile.TemporaryDirectory(prefix="assistant-bench-personal-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
        # One cache for all users: the dequantised model and the base model's general answers are made once,
        # by the first user's job (its time includes that; later ones show a steady night's run).
        env.update(ASSISTANT_CACHE=f"{tmp}/cache", PYTHONPATH=str(ROOT))
        for user in users:
            env["ASSISTANT_HOME"] = f"{tmp}/{user}"
            chats = f"{tmp}/{user}-chats.json"
            log(f"  {user}: the learning job on {exchanges} exchanges")
            done = _child("job", {"home": env["ASSISTANT_HOME"], "user": user, "exchanges": exchanges,
                                  "chats": chats, "recipe": recipe}, env)  # fmt: skip
            log(f"  {user}: {done['status']} in {done['wall_s']:.0f} s; plain loop, {PLAIN_STEPS} steps")
            done["plain"] = _child("plain", {"chats": chats, "steps": PLAIN_STEPS, "recipe": recipe}, env)
            decode: dict[str, list[float]] = {"none": [], "adapter": []}
            for _ in range(reps):
                for name in decode:
                    opts = {"adapter": done["adapter"] if name == "adapter" else None, "threads": 1,
                            "max_tokens": max_tokens}  # fmt: skip
                    decode[name].append(_child("decode", opts, env)["tokens_per_s"])
            done["decode"] = decode
            results["users"][user] = done
    return results


def rows(results: dict[str, Any]) -> list[Row]:
    users = list(results["users"].values())
    if not users:
        return []

    def score(side: str, key: str) -> list[float]:
        return [u["scores"][side][key] for u in users if u["scores"].get(side) and u["scores"][side][key] is not None]

    after, before = median(score("candidate", "personal")), median(score("base", "personal"))
    controls, base_controls = median(score("candidate", "controls")), median(score("base", "controls"))
    drift = [c / b - 1 for c, b in zip(score("candidate", "perplexity"), score("base", "perplexity"), strict=True)]
    worst_drift = max(drift) if drift else None
    control_drops = [b - c for c, b in zip(score("candidate", "controls"), score("base", "controls"), strict=True)]
    walls = [u["wall_s"] for u in users]
    ours = [u["training"]["tokens_per_s"] for u in users]
    plain = [u["plain"]["tokens_per_s"] for u in users]
    rss = max(u["training"]["peak_rss_mb"] for u in users)
    decode_ratio = median(
        [a / b for u in users for a, b in zip(u["decode"]["adapter"], u["decode"]["none"], strict=True) if b]
    )
    statuses = ", ".join(
        f"{name} {u['status']}" + (f" at {u['strength']:.0%} strength" if u.get("strength", 1.0) < 1 else "")
        for name, u in results["users"].items()
    )
    return [
        Row("personal", "probe accuracy after (share)", after, before, "", "diff", ">= 0.8 after, base near 0",
            met=None if after is None else after >= 0.8, note=f"per user {score('candidate', 'personal')}; {statuses}"),
        Row("personal", "control accuracy (share)", controls, base_controls, "", "diff", "within 0.05 of base",
            met=bool(control_drops) and max(control_drops) <= 0.05 + 1e-9, note=f"drops per user {control_drops}"),
        Row("personal", "perplexity drift (worst user)", worst_drift, None, "", "diff", "<= +5 %",
            met=None if worst_drift is None else worst_drift <= 0.05, note=f"per user {[round(d, 3) for d in drift]}"),
        Row("personal", "job time (s, worst user)", max(walls), None, "s", "diff", "<= 600",
            met=max(walls) <= 600, note=f"per user {[round(w) for w in walls]} (the first also dequantises the model "
            "once)"),
        Row("personal", "training tokens/s", median(ours), median(plain), "tok/s", "ratio", ">= 1.0x plain loop",
            met=None if not plain else (median(ours) or 0) >= (median(plain) or 0),
            note=f"ours over the whole run {spread(ours)}, plain over {PLAIN_STEPS} steps {spread(plain)}"),
        Row("personal", "job peak RSS (MiB)", rss, None, "MiB", "diff", "<= 4096", met=rss <= 4096),
        Row("personal", "decode with adapter / without", decode_ratio, None, "", "diff", ">= 0.85",
            met=None if decode_ratio is None else decode_ratio >= 0.85),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.personal", description=__doc__)
    parser.add_argument("--users", default="", help=f"comma-separated, of {', '.join(USERS)} (default: all)")
    parser.add_argument("--exchanges", type=int, default=EXCHANGES)
    parser.add_argument("--train", action="append", default=[], metavar="KEY=VALUE",
                        help="change a training setting of the job (as `assistant learn --train`)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="also write the full results (every answer) to this JSON file")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(CHILDREN, args.child)
        return
    from bench.__main__ import table

    results = run([u for u in args.users.split(",") if u] or None, args.exchanges, recipe=args.train)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str))
    print(json.dumps(results, indent=1, default=str)[:6000])
    print(table(rows(results)))


if __name__ == "__main__":
    main()
