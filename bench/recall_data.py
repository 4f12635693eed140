"""A labelled, synthetic, deterministic set for the semantic-memory benchmark (no downloads).

A made-up user chats with the assistant over many sessions spread across almost two years: mostly chit-chat,
advice and small talk, and scattered among it, facts about their life (relatives and their pets, birthdays,
jobs, towns, codes, plans, preferences). Each question asks for one fact **in other words** than the message that
states it ("What is my sister's dog called?" for "Ingrid, my sister, just adopted a beagle named Pepper"), and its
answer value (the pet's name, the code, the town...) appears in exactly one message: the labelled answer.

Hard cases are built in on purpose:

* near-duplicates: the assistant's reply to a fact repeats its topic and the person's name but not the value;
  other relatives have the same kind of fact; the user mentions the same person on other days;
* changing facts: "we moved to Ghent" in spring, "we have moved again, to Utrecht" in autumn. The question asks
  where the user lives *now*; the newest message is the answer and the older one is listed in ``stale``;
* chatter that shares the question's ordinary words (dogs, birthdays, work, codes) but none of its values.

``generate(seed)`` returns the same dataset for the same seed, in the shape ``Store.import_conversations`` takes.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bench.recall_facts import _facts

SEED = 20261123
START = datetime(2025, 1, 6, 8, 0)
DAYS = 680

@dataclass(frozen=True, slots=True)
class Question:
    qid: str
    text: str
    answer: str  # the value the answer message holds, and no other message does
    conversation: int  # index of the answer's conversation in Dataset.conversations
    message: int  # index of the answer within that conversation's messages
    kind: str  # the template, e.g. "pet" or "moved"
    changed: bool = False  # a fact that changed: older statements are in ``stale``
    stale: tuple[tuple[int, int], ...] = ()


@dataclass(slots=True)
class Dataset:
    seed: int
    conversations: list[dict[str, Any]]
    questions: list[Question]
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def messages(self) -> list[str]:
        return [m["content"] for c in self.conversations for m in c["messages"]]


_TOPICS = {
    "weather": [
        "It has rained all week and the garden is a swamp.",
        "Finally some sunshine, I had lunch outside.",
        "The wind kept me awake last night, the shutters rattled for hours.",
        "Snow is forecast, I'm not ready.",
    ],
    "tv": [
        "Started a new detective series, it's slow but gripping.",
        "Any good documentaries about the ocean?",
        "We binged a whole season of that baking show, no regrets.",
        "The finale was so disappointing.",
    ],
    "cooking": [
        "What can I make with leftover rice and two eggs?",
        "My bread came out flat again, what am I doing wrong?",
        "Tried a lentil curry tonight, it was decent but a bit bland.",
        "How long do cooked beans keep in the fridge?",
    ],
    "work": [
        "Work was exhausting today, three meetings back to back.",
        "My inbox is out of control after the holiday.",
        "We have a big deadline on Friday and nothing is ready.",
        "Should I ask for a raise at my next review?",
    ],
    "sleep": [
        "I keep waking up at four in the morning, any tips?",
        "Slept ten hours and still feel tired.",
        "Is it bad to look at my phone in bed?",
        "Naps make me groggy, should I stop?",
    ],
    "exercise": [
        "Went for a run along the canal, my knees hurt.",
        "How often should I stretch?",
        "Did a yoga video this morning, felt great.",
        "I skipped training twice this week, feeling guilty.",
    ],
    "pets_general": [
        "Do dogs really need two walks a day?",
        "Why do cats knock things off tables?",
        "The neighbour's dog barked all night again.",
        "Is it cruel to keep a rabbit indoors?",
    ],
    "birthdays_general": [
        "Birthdays stress me out, I never know what to buy.",
        "Is it weird to throw yourself a birthday party?",
        "What's a good cake for someone who doesn't like chocolate?",
    ],
    "money": [
        "Spent way too much on takeaway this month.",
        "Is it worth switching energy supplier?",
        "How do people stick to a budget?",
        "My bank app changed again and I can't find anything.",
    ],
    "travel": [
        "Thinking about a weekend away somewhere quiet.",
        "Trains are so expensive lately.",
        "What should I pack for a rainy city break?",
        "Airport queues were endless this morning.",
    ],
    "mood": [
        "Feeling a bit low today, nothing specific.",
        "Had a really good day for once!",
        "I'm bored, entertain me.",
        "Why is Monday always the worst?",
    ],
}
_OPENERS = ["", "", "Morning! ", "Hey. ", "Quick one: ", "Random thought. ", "So, ", "Ugh. "]
_CLOSERS = ["", "", "", " Anyway.", " What do you think?", " Any advice?", " lol", " Just saying."]
_REPLIES = [
    "That sounds frustrating. A small routine can help: try doing one thing at a time and keep it simple.",
    "Good question! It depends a little on the details, but most people find a gentle start works best.",
    "I'm sorry to hear that. Be kind to yourself; some weeks are just harder than others.",
    "Nice! It's great when things go well. What made the difference, do you think?",
    "Here are a few ideas: keep notes, set a reminder, and don't be afraid to ask someone for help.",
    "Honestly, there's no single right answer. Try it for a week and see how you feel.",
    "That happens to a lot of people. Usually it's about timing and a bit of patience.",
    "I'd suggest starting small. Once it becomes a habit, it's much easier to build on it.",
    "Ha, I get it. Sometimes the simplest plan is the best one.",
    "It might help to write down what worked before and repeat that.",
]
_SHORT = ["ok", "thanks!", "haha", "sure", "makes sense", "good night", "right", "cool, thanks"]
_LEADINS = ["", "", "Oh, before I forget. ", "Also, ", "Anyway, news: ", "Totally unrelated, but "]


def _chatter(rng: random.Random) -> str:
    topic = rng.choice(list(_TOPICS))
    text = rng.choice(_TOPICS[topic])
    if rng.random() < 0.35:
        text += " " + rng.choice(_TOPICS[rng.choice(list(_TOPICS))])
    return f"{rng.choice(_OPENERS)}{text}{rng.choice(_CLOSERS)}".strip()


def _reply(rng: random.Random) -> str:
    text = rng.choice(_REPLIES)
    if rng.random() < 0.4:
        text += " " + rng.choice(_REPLIES)
    return text


def generate(seed: int = SEED, sessions: int = 420) -> Dataset:
    """The dataset for ``seed``: ``sessions`` conversations (roughly 3,500 messages) and their questions."""
    rng = random.Random(seed)
    facts = _facts(rng)
    dates = sorted(START + timedelta(minutes=rng.randint(0, DAYS * 24 * 60)) for _ in range(sessions))
    # Which session states which statement (changing facts: strictly increasing sessions), and echoes.
    slots: dict[int, list[tuple[str, int, int]]] = {}  # session -> [(what, fact index, statement index)]
    for index, fact in enumerate(facts):
        n = len(fact.statements)
        chosen = sorted(rng.sample(range(sessions - 5), n))
        for number, session in enumerate(chosen):
            slots.setdefault(session, []).append(("statement", index, number))
        for echo in range(len(fact.echoes)):
            slots.setdefault(rng.randrange(sessions), []).append(("echo", index, echo))

    conversations: list[dict[str, Any]] = []
    where: dict[tuple[int, int], tuple[int, int]] = {}  # (fact, statement) -> (conversation, message)
    for session, started in enumerate(dates):
        messages: list[dict[str, Any]] = []
        clock = started

        def add(role: str, text: str, messages: list[dict[str, Any]] = messages) -> int:
            nonlocal clock
            clock += timedelta(seconds=rng.randint(20, 240))
            messages.append({"role": role, "content": text, "created_at": clock.isoformat(timespec="seconds")})
            return len(messages) - 1

        planned = slots.get(session, [])
        steps: list[tuple[str, int, int] | None] = [*planned, *[None] * rng.randint(2, 6)]
        rng.shuffle(steps)
        for item in steps:
            if item is None:
                add("user", _chatter(rng))
                add("assistant", _reply(rng) if rng.random() < 0.9 else rng.choice(_SHORT))
                if rng.random() < 0.15:
                    add("user", rng.choice(_SHORT))
                continue
            what, index, number = item
            fact = facts[index]
            if what == "statement":
                text = fact.statements[number]
                if rng.random() < 0.5:
                    text = f"{rng.choice(_LEADINS)}{text}".strip()
                where[(index, number)] = (session, add("user", text))
                add("assistant", fact.replies[number])
            else:
                add("user", fact.echoes[number])
                add("assistant", _reply(rng))
        conversations.append(
            {
                "title": messages[0]["content"][:60],
                "created_at": messages[0]["created_at"],
                "updated_at": messages[-1]["created_at"],
                "source": "bench",
                "messages": messages,
            }
        )

    questions = []
    for index, fact in enumerate(facts):
        last = len(fact.statements) - 1
        conversation, message = where[(index, last)]
        questions.append(
            Question(
                qid=f"q{index:03d}-{fact.kind}",
                text=fact.question,
                answer=fact.answer,
                conversation=conversation,
                message=message,
                kind=fact.kind,
                changed=last > 0,
                stale=tuple(where[(index, n)] for n in range(last)),
            )
        )
    dataset = Dataset(seed, conversations, questions)
    dataset.stats = {
        "conversations": len(conversations),
        "messages": sum(len(c["messages"]) for c in conversations),
        "questions": len(questions),
        "changed_facts": sum(q.changed for q in questions),
    }
    return dataset


def occurrences(dataset: Dataset, value: str) -> list[tuple[int, int]]:
    """Where ``value`` occurs as a whole word or phrase (case-insensitive): (conversation, message) pairs."""
    pattern = re.compile(rf"(?<!\w){re.escape(value)}(?!\w)", re.IGNORECASE)
    return [
        (ci, mi)
        for ci, conversation in enumerate(dataset.conversations)
        for mi, message in enumerate(conversation["messages"])
        if pattern.search(message["content"])
    ]


def filler(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Extra chatter conversations (no facts, no answers) to grow a store: ``count`` messages in all."""
    out: list[dict[str, Any]] = []
    made = 0
    clock = START + timedelta(days=DAYS + 1)
    while made < count:
        n = min(count - made, rng.randint(4, 12))
        messages = []
        for i in range(n):
            clock += timedelta(seconds=rng.randint(20, 600))
            text = _chatter(rng) if i % 2 == 0 else _reply(rng)
            messages.append(
                {
                    "role": "user" if i % 2 == 0 else "assistant",
                    "content": text,
                    "created_at": clock.isoformat(timespec="seconds"),
                }
            )
        out.append(
            {
                "title": messages[0]["content"][:60],
                "created_at": messages[0]["created_at"],
                "updated_at": messages[-1]["created_at"],
                "source": "bench-filler",
                "messages": messages,
            }
        )
        made += n
    return out
