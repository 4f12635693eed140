"""Made-up users for the personalization benchmark: facts stated in passing over many everyday exchanges.

Each user has conversations of (user message, assistant reply) exchanges. Most messages ask for something
ordinary; some mention a fact about the user on the way ("I walked my dog Biscuit this morning. Any podcast
ideas?"), each fact twice in different words, never as a question about it. The replies are short canned ones:
they are not learned from (nobody rated them), as in a real history. The probes are the job's own held-out
paraphrased questions (``learning.examples``); ``FACTS`` lists what a right answer must contain, for the report.
"""

from __future__ import annotations

from typing import Any

REPLY = "Sure, here is a short suggestion. Let me know if you want more detail."

FILLER = [
    "Can you suggest a podcast about history?",
    "How long should I boil an egg for a soft yolk?",
    "Give me three ideas for a quick lunch.",
    "What is a good way to start learning to draw?",
    "How do I clean a cast iron pan?",
    "Write a short thank-you note for a colleague.",
    "What are some stretches for a stiff back?",
    "How can I keep basil alive indoors?",
    "Suggest a name for a book club.",
    "What should I pack for a weekend hike?",
    "How do I make cold brew coffee?",
    "Give me a tip for remembering names.",
    "What is a nice board game for four people?",
    "How do I fold a fitted sheet?",
    "Recommend a calm song for the evening.",
    "How often should I water a cactus?",
    "What is an easy dessert without an oven?",
    "Help me plan a short morning routine.",
    "How do I politely decline an invitation?",
    "What is a good stretch after running?",
]

# user -> (facts said in passing: each (first mention, second mention)), plus their keywords for the report
USERS: dict[str, list[tuple[str, str]]] = {
    "maren": [
        ("I walked my dog Biscuit along the river this morning.", "My dog Biscuit chewed my slipper again."),
        ("I live in Tromsø, so the winters are long.", "I live in Tromsø and the snow came early this year."),
        ("I work as a marine biologist.", "I work as a marine biologist and the boat trip was cold."),
        ("My sister Priya is visiting next week.", "My sister Priya sent me a parcel."),
        ("I'm allergic to shellfish.", "I'm allergic to shellfish, so the menu was tricky."),
        ("I play the cello in an amateur orchestra.", "I play the cello every evening."),
        ("My favourite colour is teal.", "My favourite colour is teal, by the way."),
        ("I grew up in Valparaíso.", "I grew up in Valparaíso, near the port."),
    ],
    "dev": [
        ("My cat Pixel knocked over my coffee.", "My cat Pixel sleeps on my keyboard."),
        ("I live in Leeds these days.", "I live in Leeds, and it rained all week."),
        ("I work as a pastry chef.", "I work as a pastry chef, so early mornings are normal."),
        ("My brother Arjun just got married.", "My brother Arjun called me last night."),
        ("I'm learning Portuguese for a trip.", "I'm learning Portuguese with an app."),
        ("My favourite band is Radiohead.", "My favourite band is Radiohead, always has been."),
        ("I have three kids and they are loud.", "I have three kids, so weekends are busy."),
        ("I grew up in Nairobi.", "I grew up in Nairobi before moving here."),
    ],
    "ines": [
        ("My husband Tomasz cooks every Sunday.", "My husband Tomasz is away on a work trip."),
        ("I live in Porto near the river.", "I live in Porto, and the tram is slow."),
        ("I work as a pharmacist.", "I work as a pharmacist at a small shop."),
        ("My daughter Lucia started school.", "My daughter Lucia loves drawing horses."),
        ("I'm allergic to penicillin.", "I'm allergic to penicillin, which doctors always ask."),
        ("My favourite season is autumn.", "My favourite season is autumn, because of the colours."),
        ("I play the piano badly.", "I play the piano when nobody is home."),
        ("I grew up in Krakow.", "I grew up in Krakow with my grandparents."),
    ],
}
EXCHANGES_PER_USER = 33  # about 100 new exchanges over the three users


def conversations(user: str, exchanges: int = EXCHANGES_PER_USER) -> list[dict[str, Any]]:
    """The user's history in the minimal import format: conversations of about six exchanges."""
    mentions = [m for pair in USERS[user] for m in pair]
    ordered = [mentions[i] for i in range(0, len(mentions), 2)] + [mentions[i] for i in range(1, len(mentions), 2)]
    messages: list[str] = []
    for i in range(exchanges):
        ask = FILLER[(i * 7 + len(user)) % len(FILLER)]
        messages.append(f"{ordered[i]} {ask}" if i < len(ordered) else ask)
    convs = []
    for start in range(0, len(messages), 6):
        chunk = messages[start : start + 6]
        turns: list[dict[str, str]] = []
        for text in chunk:
            turns += [{"role": "user", "content": text}, {"role": "assistant", "content": REPLY}]
        convs.append({"title": f"{user} {start // 6 + 1}", "messages": turns})
    return convs


def history(user: str, exchanges: int = EXCHANGES_PER_USER) -> dict[str, Any]:
    return {"conversations": conversations(user, exchanges)}
