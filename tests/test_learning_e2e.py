"""`assistant learn` end to end on the real bundled model, through the real CLI: a user mentions facts about
themselves in passing, the job learns them, and with memory off the assistant answers held-out questions about
them that the base model gets wrong, while general questions keep their answers. Then the user forgets one
conversation and the next run's adapter no longer knows what it said; then a run whose promotion the gate refuses
(``--min-gain 1``: no adapter can beat the current one by more than 100 %) leaves the active adapter serving.

One session fixture runs the whole story once (three runs; the first one also dequantises the model into
the test run's cache); the tests check its results. Time on a 2-core CPU
is reported in the fixture's ``timings`` (see the report to the lead / docs/benchmarks.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from learning.qa import answer_has
from tests.test_cli_chat import run_cli

pytestmark = [pytest.mark.model, pytest.mark.slow]

REPLY = "Sure, here is a short suggestion."
# Facts said in passing, each twice, around ordinary requests; the cello is in a conversation of its own.
KEPT = [
    "I walked my dog Biscuit along the river this morning. Can you suggest a podcast?",
    "I live in Tromsø, so the winters are long. What is a good winter hobby?",
    "I work as a marine biologist. How do I write a short bio?",
    "My sister Priya is visiting next week. Any quick dessert ideas?",
    "My dog Biscuit chewed my slipper again. How do I stop that?",
    "I live in Tromsø and the snow came early. What should I wear?",
    "I work as a marine biologist and the boat trip was cold. Any tea ideas?",
    "My sister Priya sent me a parcel. How do I write a thank-you note?",
]
FORGOTTEN = [
    "I play the cello in an amateur orchestra. How do I practise scales?",
    "I play the cello every evening. How do I keep my hands warm?",
]
LATER = ["My favourite colour is teal. What should I paint my room?", "My favourite colour is teal, by the way."]
CONTROLS = {
    "What is the capital of France?": ["Paris"],
    "How many days are in a week?": ["seven"],
    "What is the opposite of hot?": ["cold"],
    "What colour is grass?": ["green"],
}
CELLO = "What instrument do I play?"
DOG = "What is my dog's name?"


def conversation(title: str, texts: list[str]) -> dict[str, Any]:
    messages: list[dict[str, str]] = []
    for text in texts:
        messages += [{"role": "user", "content": text}, {"role": "assistant", "content": REPLY}]
    return {"title": title, "messages": messages}


@dataclass
class Story:
    env: dict[str, str]
    first: dict[str, Any]
    second: dict[str, Any]
    refused: dict[str, Any]
    probes: list[dict[str, Any]]  # held-out probes of the first run: question, expected, adapter and base answers
    controls: dict[str, tuple[str, str]]  # question -> (adapter answer, base answer)
    cello: dict[str, str]  # "v1" and "v2": the answer to CELLO with each adapter
    dog_v2: str
    adapters: dict[str, Any]
    after_refusal: dict[str, Any]
    first_files: dict[str, Any]  # run 1's report.json and the head of its loss.png (forgetting deletes them later)
    timings: dict[str, float] = field(default_factory=dict)


def ask(env: dict[str, str], question: str, *flags: str) -> dict[str, Any]:
    done = run_cli("chat", "--json", "--no-memory", *flags, question, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def learn(env: dict[str, str], *flags: str) -> dict[str, Any]:
    done = run_cli("learn", "--json", *flags, **env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def import_history(env: dict[str, str], tmp: Path, conversations: list[dict[str, Any]]) -> list[int]:
    file = tmp / f"history-{time.monotonic_ns()}.json"
    file.write_text(json.dumps({"conversations": conversations}))
    done = run_cli("history", "import", str(file), "--json", **env)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["conversation_ids"])


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Story:
    tmp = tmp_path_factory.mktemp("learn-e2e")
    env = {
        "ASSISTANT_HOME": str(tmp / "home"),
        "ASSISTANT_CACHE": str(shared_cache),
        "ASSISTANT_SEED": "42",
        "ASSISTANT_TEMPERATURE": "0",
        "ASSISTANT_MAX_TOKENS": "24",
    }
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    ids = import_history(env, tmp, [conversation("walks", KEPT[:4]), conversation("cello", FORGOTTEN),
                                    conversation("later that week", KEPT[4:])])  # fmt: skip
    cello_conversation = ids[1]
    first = learn(env)
    lap("learn 1")
    first_files = {
        "report": json.loads(Path(first["files"]["report"]).read_text()),
        "plot": Path(first["files"]["plot"]).read_bytes()[:8],
        "mode": Path(first["files"]["report"]).stat().st_mode & 0o777,
    }
    with_adapter = {q: ask(env, q) for q in [p["question"] for p in first["evaluation"]["candidate"]["probes"]]}
    base = {q: ask(env, q, "--no-adapter") for q in with_adapter}
    probes = [
        {**p, "adapter": with_adapter[p["question"]]["reply"], "base": base[p["question"]]["reply"],
         "label": with_adapter[p["question"]]["adapter"]}
        for p in first["evaluation"]["candidate"]["probes"]
    ]  # fmt: skip
    controls = {q: (ask(env, q)["reply"], ask(env, q, "--no-adapter")["reply"]) for q in CONTROLS}
    cello_v1 = ask(env, CELLO)["reply"]
    lap("ask 1")
    done = run_cli("history", "delete", str(cello_conversation), "--yes", **env)
    assert done.returncode == 0, done.stderr
    second = learn(env)
    lap("learn 2")
    cello_v2 = ask(env, CELLO)["reply"]
    dog_v2 = ask(env, DOG)["reply"]
    lap("ask 2")
    import_history(env, tmp, [conversation("colours", LATER)])
    refused = learn(env, "--min-gain", "1", "--train", "iters=2")
    lap("learn 3 (refused)")
    adapters = json.loads(run_cli("adapters", "list", "--json", **env).stdout)
    after_refusal = ask(env, DOG)
    lap("ask 3")
    return Story(env, first, second, refused, probes, controls, {"v1": cello_v1, "v2": cello_v2}, dog_v2, adapters,
                 after_refusal, first_files, timings)  # fmt: skip


def test_the_first_run_promotes_an_adapter_that_answers_what_the_base_model_cannot(story: Story) -> None:
    print("e2e timings (s):", story.timings)
    first = story.first
    assert first["status"] == "promoted", first["message"]
    version = f"v{first['adapter_version']}"
    assert all(p["label"] == version for p in story.probes)  # the chat used the new adapter, with memory off
    right = [p for p in story.probes if answer_has(p["adapter"], p["expected"])]
    base_right = [p for p in story.probes if answer_has(p["base"], p["expected"])]
    assert len(story.probes) >= 4
    assert len(right) / len(story.probes) >= 0.6, [(p["question"], p["adapter"]) for p in story.probes]
    assert len(base_right) <= 1, [(p["question"], p["base"]) for p in base_right]
    assert len([p for p in right if p not in base_right]) >= 3


def test_general_questions_keep_their_answers(story: Story) -> None:
    kept = sum(
        answer_has(mine, CONTROLS[q]) >= answer_has(base, CONTROLS[q]) for q, (mine, base) in story.controls.items()
    )
    assert kept >= len(CONTROLS) - 1, story.controls
    evaluation = story.first["evaluation"]
    assert evaluation["candidate"]["controls"] >= evaluation["base"]["controls"] - 0.05
    assert evaluation["candidate"]["perplexity"] <= evaluation["base"]["perplexity"] * 1.05


def test_the_run_wrote_its_report_and_plot(story: Story) -> None:
    report = story.first_files["report"]
    assert report["status"] == "promoted" and report["losses"] == story.first["losses"]
    assert report["verification"]["passed"] is True
    assert story.first_files["plot"] == b"\x89PNG\r\n\x1a\n" and story.first_files["mode"] == 0o600
    assert story.first["losses"][-1] < story.first["losses"][0]


def test_a_forgotten_conversation_is_not_known_by_the_next_adapter(story: Story) -> None:
    assert answer_has(story.cello["v1"], ["cello"]), story.cello  # the first adapter knew it
    second = story.second
    assert second["unlearned"]["removed"] == [story.first["adapter_version"]]
    assert second["status"] == "promoted", second["message"]
    assert not answer_has(story.cello["v2"], ["cello"]), story.cello
    assert answer_has(story.dog_v2, ["Biscuit"]), story.dog_v2  # what was not forgotten is still known
    assert "cello" not in json.dumps(second["samples"])
    removed = next(a for a in story.adapters["adapters"] if a["version"] == story.first["adapter_version"])
    assert removed["state"] == "removed" and not removed["file_present"]


def test_a_refused_run_keeps_the_active_adapter(story: Story) -> None:
    refused = story.refused
    assert refused["status"] == "refused"
    assert refused["decision"]["reasons"][0].startswith("It answers")
    assert f"so adapter v{story.second['adapter_version']} stays" in refused["message"]
    assert story.adapters["active"] == f"v{story.second['adapter_version']}"
    states = {a["version"]: a["state"] for a in story.adapters["adapters"]}
    assert states[refused["adapter_version"]] == "refused"
    assert story.after_refusal["adapter"] == f"v{story.second['adapter_version']}"
    assert answer_has(story.after_refusal["reply"], ["Biscuit"])
