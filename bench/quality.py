"""Reply quality (`python -m bench quality`): does memory make answers worse, and how often do replies loop?

1. **Memory on vs off.** A realistic memory: the labelled set of ``bench/recall_data.py`` (~4,300 messages of a
   made-up user's earlier conversations, indexed with the real embedder) and a few remembered facts. Everyday
   questions are asked through a whole ``Session`` turn with memory on and with memory off (temperature 0, seed 42,
   the default model and settings otherwise): general-knowledge questions, which memory must not make worse,
   questions about the remembered facts, and questions whose answers lie in one earlier conversation. Each answer
   is scored: holds the expected key word, is in English (``english``), degenerate (``assistant.loops``). Each
   bench turn is forgotten afterwards, so later turns recall the same memory.
2. **Loops.** Everyday creative prompts ("Write a haiku about...", "List ten ideas...") through the backend with
   the default sampling and with the old one (no repeat penalty, no cut), at temperature 0 and at the default
   temperature on a few seeds: the share of degenerate replies (a word 4-gram repeated 4+ times), the share of
   replies cut for looping, and the general-knowledge answers right under each sampling (the control).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from bench import SEED, Row, log, temp_home

GENERAL: list[tuple[str, tuple[str, ...]]] = [
    ("What is the capital of France?", ("paris",)),
    ("How many days are there in a week?", ("seven", "7")),
    ("What is the largest planet in our solar system?", ("jupiter",)),
    ("What do bees make?", ("honey",)),
    ("What is the opposite of hot?", ("cold",)),
    ("What colour is the sky on a clear day?", ("blue",)),
    ("What is the boiling point of water in Celsius?", ("100",)),
    ("Which animal is known as man's best friend?", ("dog",)),
    ("What is 2 plus 2?", ("4", "four")),
    ("What language is spoken in Spain?", ("spanish",)),
    ("What is the capital of Japan?", ("tokyo",)),
    ("How many legs does a spider have?", ("eight", "8")),
]
# Topics the labelled set never mentions, so each question has one answer in memory.
FACTS = [
    "My canoe is called Olive.",
    "My favourite tea is Earl Grey.",
    "I am vegetarian.",
    "My piano teacher is called Mrs Okafor.",
]
FACT_QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("What is my canoe called?", ("olive",)),
    ("What is my favourite tea?", ("earl grey",)),
    ("What kind of diet do I follow?", ("vegetarian",)),
    ("Who is my piano teacher?", ("okafor",)),
]
RECALLED = 8  # questions of the labelled set, answered in one earlier conversation
CREATIVE = [
    "My sister Noor has a dachshund called Pepperoni. Write a haiku about her.",
    "Write a short poem about a warm summer day.",
    "Tell me a bedtime story about a little fox.",
    "Write a limerick about my cat Miso.",
    "Describe your perfect weekend.",
    "Write a birthday message for my grandmother Rosa.",
    "Give me a motivational speech for Monday morning.",
    "Write a song chorus about the sea.",
    "List ten ideas for a rainy afternoon with kids.",
    "Write a short thank-you note to my neighbour for watering my plants.",
    "Tell me a joke about programmers.",
    "Write a haiku about autumn leaves.",
]
SAMPLING_SEEDS = (1, 2, 3)  # at the default temperature, besides one greedy run
LOOP_TOKENS = 200

_ENGLISH = frozenset(
    "the a an is are was of and to in it that this with for on as be by at you your i my it's there what".split()
)
_OTHER = frozenset(
    """le la les est des du une un et en que qui pour dans pas sont
    el los las es del una y que por para con
    der die das ist und ein eine nicht mit zu
    il lo gli della che per non sono""".split()
)
_WORD = re.compile(r"[a-zà-ÿ']+")


def english(text: str) -> bool:
    """A rough language check: more English function words than French, Spanish, German or Italian ones."""
    found = _WORD.findall(text.lower())
    ours = sum(w in _ENGLISH for w in found)
    theirs = sum(w in _OTHER for w in found)
    return ours >= theirs if ours or theirs else True


def right(text: str, keys: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(re.search(rf"(?<!\w){re.escape(k.lower())}(?!\w)", lowered) for k in keys)


@dataclass(slots=True)
class Answer:
    group: str
    question: str
    memory: bool
    reply: str
    right: bool
    english: bool
    degenerate: bool
    finish: str
    facts: int
    snippets: int


def _ask(session: Any, group: str, question: str, keys: tuple[str, ...], memory: Any) -> Answer:
    from assistant.loops import degenerate

    turn = session.start_turn(question)
    for _ in turn.stream():
        pass
    result = turn.result
    assert result is not None
    memory.forget_conversation(turn.conversation_id)  # the bench's turns never become memories
    reply = result.reply
    return Answer(
        group,
        question,
        session.use_memory,
        reply,
        right(reply, keys),
        english(reply),
        degenerate(reply),
        result.finish_reason,
        len(result.facts),
        len(result.memories),
    )


def memory_on_off(max_tokens: int = 64) -> dict[str, Any]:
    """Every question with memory on and off, alternating, on one store holding a realistic memory."""
    from assistant.config import Settings
    from assistant.session import Session
    from bench.recall import CACHE, index_from_cache
    from bench.recall_data import generate
    from storage.db import open_store
    from storage.embedder import Embedder
    from storage.facts import add_fact
    from storage.memory import Memory

    answers: list[Answer] = []
    with temp_home() as home:
        store = open_store(home)
        dataset = generate()
        store.import_conversations(dataset.conversations)
        embedder = Embedder(threads=1, models_dir=CACHE)
        memory = Memory(store, home, embedder=embedder)
        started = time.perf_counter()
        index_from_cache(store, memory, memory.index, embedder)
        log(f"  memory: {dataset.stats['messages']} messages indexed in {time.perf_counter() - started:.1f} s")
        for fact in FACTS:
            add_fact(store, fact)
        step = max(1, len(dataset.questions) // RECALLED)
        recalled = [(q.text, (q.answer,)) for q in dataset.questions[::step][:RECALLED]]
        settings = Settings(max_tokens=max_tokens, temperature=0.0, seed=SEED)
        session = Session(store, settings, home=home, memory=memory, use_memory=True, background_index=False)
        session.load()
        groups: dict[str, list[tuple[str, tuple[str, ...]]]] = {
            "general": GENERAL,
            "facts": FACT_QUESTIONS,
            "recalled": recalled,
        }
        for group, questions in groups.items():
            for number, (question, keys) in enumerate(questions):
                for side in (True, False) if number % 2 == 0 else (False, True):
                    session.use_memory = side
                    answers.append(_ask(session, group, question, keys, memory))
        session.close()
        store.close()
    summary: dict[str, Any] = {}
    for group in ("general", "facts", "recalled"):
        for side in (True, False):
            items = [a for a in answers if a.group == group and a.memory is side]
            summary[f"{group}_{'on' if side else 'off'}"] = {
                "questions": len(items),
                "right": round(sum(a.right for a in items) / max(len(items), 1), 3),
                "english": round(sum(a.english for a in items) / max(len(items), 1), 3),
                "degenerate": sum(a.degenerate for a in items),
                "facts_given": round(sum(a.facts for a in items) / max(len(items), 1), 2),
                "snippets_given": round(sum(a.snippets for a in items) / max(len(items), 1), 2),
            }
    for key, value in summary.items():
        log(
            f"  {key:14} right {value['right']:.2f}  english {value['english']:.2f}  facts {value['facts_given']}"
            f"  snippets {value['snippets_given']}"
        )
    worse = [
        {"question": a.question, "on": a.reply[:160], "off": b.reply[:160]}
        for a in answers
        if a.memory
        for b in answers
        if not b.memory and b.question == a.question and b.right and not a.right
    ]
    return {
        "summary": summary,
        "worse_with_memory": worse,
        "answers": [
            {k: getattr(a, k) for k in ("group", "question", "memory", "right", "english", "finish")}
            | {"reply": a.reply[:200]}
            for a in answers
        ],
    }


def loops(max_tokens: int = LOOP_TOKENS) -> dict[str, Any]:
    """Creative prompts and the general questions under the default sampling and the old one (no guards)."""
    from assistant.config import DEFAULT_SYSTEM_PROMPT, Settings
    from assistant.loops import degenerate, repeated_share
    from assistant.runtime.base import GenerationParams
    from bench import load_model

    defaults = Settings()
    with temp_home() as home:
        backend = load_model(home, n_ctx=defaults.context_size, threads=defaults.effective_threads())
    samplings = {
        "default": GenerationParams.from_settings(defaults),
        "unguarded": GenerationParams.from_settings(defaults),
    }
    samplings["unguarded"].repeat_penalty = 1.0
    samplings["unguarded"].cut_loops = False
    runs = [(0.0, SEED)] + [(defaults.temperature, seed) for seed in SAMPLING_SEEDS]
    out: dict[str, Any] = {"runs": [list(r) for r in runs], "max_tokens": max_tokens}
    examples: list[dict[str, Any]] = []
    for name, base in samplings.items():
        looped = cut = total = correct = asked = 0
        shares: list[float] = []
        for temperature, seed in runs:
            for prompt in CREATIVE:
                params = GenerationParams(
                    **{**_fields(base), "temperature": temperature, "seed": seed, "max_tokens": max_tokens}
                )
                text, finish = _generate(backend, DEFAULT_SYSTEM_PROMPT, prompt, params)
                total += 1
                looped += degenerate(text)
                cut += finish == "loop"
                shares.append(repeated_share(text))
                if (degenerate(text) or finish == "loop") and len(examples) < 12:
                    examples.append({"sampling": name, "prompt": prompt, "finish": finish, "reply": text[:160]})
            for question, keys in GENERAL:
                params = GenerationParams(
                    **{**_fields(base), "temperature": temperature, "seed": seed, "max_tokens": 64}
                )
                text, _ = _generate(backend, DEFAULT_SYSTEM_PROMPT, question, params)
                asked += 1
                correct += right(text, keys)
        out[name] = {
            "replies": total,
            "degenerate": looped,
            "degenerate_share": round(looped / total, 3),
            "cut": cut,
            "repeated_4gram_share_mean": round(sum(shares) / len(shares), 3),
            "control_right": round(correct / asked, 3),
            "control_asked": asked,
        }
        log(f"  {name:9} degenerate {looped}/{total}, cut {cut}; control right {correct}/{asked}")
    out["examples"] = examples
    backend.close()
    return out


def _fields(params: Any) -> dict[str, Any]:
    from dataclasses import fields

    return {f.name: getattr(params, f.name) for f in fields(params)}


def _generate(backend: Any, system: str, request: str, params: Any) -> tuple[str, str]:
    prompt = backend.format_chat([{"role": "system", "content": system}, {"role": "user", "content": request}])
    chunks = list(backend.stream(prompt, params))
    return "".join(c.text for c in chunks), chunks[-1].finish_reason or ""


def run(max_tokens: int = 64) -> dict[str, Any]:
    log("  memory on vs off")
    result: dict[str, Any] = {"memory": memory_on_off(max_tokens)}
    log("  loops")
    result["loops"] = loops()
    return result


def rows(result: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    summary = result["memory"]["summary"]
    labels = {
        "general": "general knowledge",
        "facts": "about remembered facts",
        "recalled": "answered in an earlier conversation",
    }
    for group, label in labels.items():
        on, off = summary[f"{group}_on"], summary[f"{group}_off"]
        n = on["questions"]
        target = ">= off" if group == "general" else "> off"
        met = on["right"] >= off["right"] if group == "general" else on["right"] > off["right"]
        out.append(
            Row(
                "quality",
                f"right answers, memory on vs off: {label} ({n} q)",
                on["right"],
                off["right"],
                "",
                "diff",
                target,
                met,
                note=f"in English {on['english']:.2f} vs {off['english']:.2f}; given {on['facts_given']} facts and "
                f"{on['snippets_given']} snippets per question",
            )
        )
    loops = result["loops"]
    default, unguarded = loops["default"], loops["unguarded"]
    out.append(
        Row(
            "quality",
            f"degenerate replies, default sampling vs no repeat guard ({default['replies']} creative replies)",
            default["degenerate_share"],
            unguarded["degenerate_share"],
            "",
            "diff",
            "<= 0.05",
            default["degenerate_share"] <= 0.05,
            note=f"cut for looping {default['cut']}; repeated 4-gram share {default['repeated_4gram_share_mean']} vs "
            f"{unguarded['repeated_4gram_share_mean']}; temperature/seed runs {loops['runs']}",
        )
    )
    out.append(
        Row(
            "quality",
            f"control answers right, default sampling vs no repeat guard ({default['control_asked']} q)",
            default["control_right"],
            unguarded["control_right"],
            "",
            "diff",
            ">= unguarded - 0.05",
            default["control_right"] >= unguarded["control_right"] - 0.05,
        )
    )
    return out
