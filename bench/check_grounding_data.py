"""A labelled evaluation set for the grounding check, built in code (deterministic for a seed).

Each item is a question with its context (facts about a made-up user, as memories and earlier messages, and general
passages about made-up places and things) and one answer, labelled 1 (grounded: an exact restatement, a paraphrase,
a partial quote, with or without pleasantries) or 0 (ungrounded: a wrong name, a wrong number or date, an invented
claim about the user, a contradiction, or a correct sentence followed by a plausible detail the context lacks).
Tune on one seed, report on another: the names, numbers, templates' fillers and distractor passages all change.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

FIRST = (
    "Maria Lena Tomas Priya Jonas Aiko Rafael Ingrid Omar Sofia Nikolai Amara Lucas Elif Mateo Hana Felix Zara".split()
)
LAST = "Santos Berg Kowalski Okafor Lindqvist Moreau Tanaka Reyes Novak Haddad Fischer Costa Varga Mensah".split()
CITIES = "Lisbon Porto Tallinn Ghent Krakow Valencia Bergen Lyon Graz Utrecht Bologna Aarhus Cork Brno".split()
JOBS = [
    ("nurse", "at a children's hospital"),
    ("software engineer", "at a logistics startup"),
    ("teacher", "at a primary school"),
    ("architect", "at a small studio"),
    ("baker", "in a family bakery"),
    ("accountant", "at an insurance firm"),
    ("librarian", "at the city library"),
    ("pharmacist", "at a local pharmacy"),
]
PETS = [("cat", "cats"), ("dog", "dogs"), ("rabbit", "rabbits"), ("parrot", "parrots")]
PET_NAMES = "Miso Pepper Biscuit Luna Nori Ziggy Olive Mango Pixel Juno Tofu Waffles".split()
HOBBIES = ["rock climbing", "playing the cello", "birdwatching", "pottery", "long-distance running", "chess"]
FOODS = ["peanuts", "shellfish", "gluten", "lactose", "sesame"]
MONTHS = "January February March April May June July August September October November December".split()
INVENTED_USER = [
    "You also volunteer at an animal shelter every Saturday.",
    "You mentioned that you are training for a triathlon.",
    "Your brother is a pilot.",
    "You are learning Japanese in the evenings.",
    "You recently bought a vintage motorbike.",
    "You grew up on a farm outside the city.",
    "Your partner works as a chef.",
    "You have been vegetarian for years.",
]
ABSENT_DETAILS = [
    "It has a small rooftop garden.",
    "The building was later painted bright yellow.",
    "It is usually closed on Mondays.",
    "Most visitors arrive by ferry.",
    "The project was funded by a private donor.",
    "It was renovated after a fire.",
]
LOWER_AFTER_COMMA = frozenset("You You've Your The It In Founded Roughly".split())
OPENERS = ["", "", "Sure! ", "Of course. ", "Good question. ", "From what you told me, ", "According to my notes, "]
CLOSERS = ["", "", " Let me know if you need anything else.", " Is there anything else you would like to know?"]
FILLER_PASSAGES = [
    "Regular stretching before exercise can reduce the risk of minor injuries. Warm muscles respond better to load.",
    "Sourdough bread uses a fermented starter instead of commercial yeast. The long fermentation adds flavour.",
    "Most houseplants prefer indirect light and should be watered only when the top soil feels dry.",
    "A good night's sleep helps memory. Adults usually need between seven and nine hours.",
    "Tea leaves steeped too long release bitter tannins. Green tea is best brewed below boiling.",
]


@dataclass(slots=True)
class Item:
    question: str
    context: list[str]
    answer: str
    label: int  # 1 grounded, 0 ungrounded
    kind: str  # how the answer was made: "exact", "paraphrase", "wrong_name", ...
    extra: dict[str, str] = field(default_factory=dict)


def _other(rng: random.Random, pool: list[str], not_this: str) -> str:
    return rng.choice([p for p in pool if p != not_this])


def _profile(rng: random.Random) -> dict[str, Any]:
    first, sister, brother = rng.sample(FIRST, 3)
    job, where = rng.choice(JOBS)
    pet, pets = rng.choice(PETS)
    pet_names = rng.sample(PET_NAMES, 2)
    return {
        "name": first,
        "last": rng.choice(LAST),
        "city": rng.choice(CITIES),
        "home": rng.choice(CITIES),
        "job": job,
        "where": where,
        "sister": sister,
        "friend": brother,
        "pet": pet,
        "pets": pets,
        "pet_names": pet_names,
        "years": rng.randint(2, 19),
        "bday_day": rng.randint(1, 28),
        "bday_month": rng.choice(MONTHS),
        "sister_year": rng.randint(1970, 2005),
        "hobby": rng.choice(HOBBIES),
        "allergy": rng.choice(FOODS),
        "km": rng.choice([5, 10, 21, 42]),
        "minutes": rng.randint(22, 59),
    }


def _place(rng: random.Random) -> dict[str, Any]:
    stem = rng.choice(["Karst", "Vel", "Orm", "Thal", "Brisk", "Cald", "Mor", "Ilv", "Sarn", "Quen"])
    return {
        "bridge": stem + rng.choice(["en", "ara", "ow", "ith"]) + " Bridge",
        "river": rng.choice(["Velmar", "Oster", "Lunne", "Draven", "Silka"]),
        "year": rng.randint(1820, 1990),
        "length": rng.randint(120, 980),
        "engineer": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "town": rng.choice(["Harwick", "Selby Cross", "Amberlin", "Norrvik", "Calderon", "Westmere"]),
        "pop": rng.randint(3, 95) * 1000,
        "museum": rng.choice(["Glass", "Clock", "Salt", "Lantern", "Map"]) + " Museum",
        "founded": rng.randint(1700, 1960),
    }


def _user_cases(p: dict[str, Any], rng: random.Random) -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    """(question, grounded exact, grounded paraphrase, [(ungrounded answer, kind), ...]) about the user."""
    name, city, sister = p["name"], p["city"], p["sister"]
    n1, n2 = p["pet_names"]
    years, day, month = p["years"], p["bday_day"], p["bday_month"]
    wrong_city = _other(rng, CITIES, str(city))
    wrong_pet = rng.choice([n for n in PET_NAMES if n not in (n1, n2)])
    wrong_sister = _other(rng, FIRST, str(sister))
    wrong_day = int(day) % 28 + rng.randint(1, 5)
    wrong_month = _other(rng, MONTHS, str(month))
    wrong_years = int(years) + rng.choice([-1, 1, 2, 3])
    return [
        (
            "Where do I live?",
            f"You live in {city}.",
            f"Your home is in {city}, where you moved for work.",
            [(f"You live in {wrong_city}.", "wrong_name"), (f"You don't live in {city}.", "contradiction")],
        ),
        (
            "What are my pets called?",
            f"Your {p['pets']} are called {n1} and {n2}.",
            f"You have two {p['pets']}: {n1} and {n2}.",
            [
                (f"Your {p['pets']} are called {n1} and {wrong_pet}.", "wrong_name"),
                (f"You have three {p['pets']}: {n1}, {n2} and {wrong_pet}.", "wrong_number"),
            ],
        ),
        (
            "When is my birthday?",
            f"Your birthday is on {day} {month}.",
            f"You were born on {month} {day}, so your birthday is then.",
            [
                (f"Your birthday is on {wrong_day} {month}.", "wrong_date"),
                (f"Your birthday is on {day} {wrong_month}.", "wrong_date"),
            ],
        ),
        (
            "How long have I worked at my job?",
            f"You have worked as a {p['job']} {p['where']} for {years} years.",
            f"You've been a {p['job']} for {years} years now.",
            [
                (f"You have worked as a {p['job']} for {wrong_years} years.", "wrong_number"),
                (rng.choice(INVENTED_USER), "invented_user"),
            ],
        ),
        (
            "What is my sister's name?",
            f"Your sister is {sister}, born in {p['sister_year']}.",
            f"Your sister's name is {sister}.",
            [
                (f"Your sister is called {wrong_sister}.", "wrong_name"),
                (f"Your sister {sister} was born in {int(p['sister_year']) + rng.randint(1, 6)}.", "wrong_number"),
            ],
        ),
        (
            "What should I avoid eating?",
            f"You are allergic to {p['allergy']}, so avoid it.",
            f"You told me you have an allergy to {p['allergy']}.",
            [
                (f"You are allergic to {_other(rng, FOODS, str(p['allergy']))}.", "wrong_name"),
                (f"You are not allergic to {p['allergy']}.", "contradiction"),
                (f"You are allergic to {p['allergy']}. {rng.choice(INVENTED_USER)}", "invented_user"),
            ],
        ),
        (
            "What was my best race time?",
            f"You ran the {p['km']} km race in {p['minutes']} minutes, your best time.",
            f"Your best was {p['minutes']} minutes over {p['km']} km.",
            [
                (f"You ran the {p['km']} km race in {int(p['minutes']) + rng.randint(1, 9)} minutes.", "wrong_number"),
                (f"Your best was {p['minutes']} minutes over {p['km']} km, and you won a medal for it.", "absent"),
            ],
        ),
        (
            "What do I do for fun?",
            f"You enjoy {p['hobby']}.",
            f"In your free time you like {p['hobby']}, mostly at weekends.",
            [
                (f"You enjoy {_other(rng, HOBBIES, str(p['hobby']))}.", "invented_user"),
                (f"You enjoy {p['hobby']} with your friend {_other(rng, FIRST, str(p['friend']))}.", "wrong_name"),
            ],
        ),
        (
            "What's my full name?",
            f"Your name is {name} {p['last']}.",
            f"You are {name} {p['last']}.",
            [(f"Your name is {name} {_other(rng, LAST, str(p['last']))}.", "wrong_name")],
        ),
    ]


def _user_context(p: dict[str, Any], rng: random.Random) -> list[str]:
    n1, n2 = p["pet_names"]
    facts = [
        f"My name is {p['name']} {p['last']}.",
        f"I live in {p['city']}. I moved there from {p['home']} for work.",
        f"I work as a {p['job']} {p['where']}; I've been doing it for {p['years']} years.",
        f"My birthday is {p['bday_month']} {p['bday_day']}.",
        f"I have two {p['pets']} called {n1} and {n2}.",
        f"My sister {p['sister']} was born in {p['sister_year']}. My friend {p['friend']} lives nearby.",
        f"I'm allergic to {p['allergy']}.",
        f"In my free time I love {p['hobby']}, mostly at weekends.",
        f"Last spring I ran the {p['km']} km race in {p['minutes']} minutes, my best time so far.",
    ]
    rng.shuffle(facts)
    # As the chat gives them: a few facts per memory or message.
    cut = rng.randint(2, 4)
    return [" ".join(facts[:cut]), " ".join(facts[cut:6]), " ".join(facts[6:])]


def _place_cases(
    q: dict[str, Any], rng: random.Random
) -> tuple[str, list[tuple[str, str, str, list[tuple[str, str]]]]]:
    passage = (
        f"The {q['bridge']} crosses the {q['river']} River at {q['town']}. It opened in {q['year']} and is "
        f"{q['length']} metres long. It was designed by the engineer {q['engineer']}. "
        f"{q['town']} has about {q['pop']:,} inhabitants. The {q['museum']} in {q['town']} was founded in "
        f"{q['founded']} and shows local crafts."
    )
    wrong_engineer = f"{rng.choice(FIRST)} {_other(rng, LAST, str(q['engineer']).split()[1])}"
    cases = [
        (
            f"When did the {q['bridge']} open?",
            f"The {q['bridge']} opened in {q['year']}.",
            f"It was opened to traffic in {q['year']}, crossing the {q['river']} River.",
            [
                (f"The {q['bridge']} opened in {int(q['year']) + rng.randint(1, 30)}.", "wrong_date"),
                (f"The {q['bridge']} opened in {q['year']}. {rng.choice(ABSENT_DETAILS)}", "absent"),
            ],
        ),
        (
            f"How long is the {q['bridge']}?",
            f"It is {q['length']} metres long.",
            f"The bridge spans {q['length']} metres across the {q['river']}.",
            [
                (f"It is {int(q['length']) + rng.choice([-50, 40, 100, 200])} metres long.", "wrong_number"),
                (f"It is {q['length']} kilometres long and has four lanes.", "absent"),
            ],
        ),
        (
            f"Who designed the {q['bridge']}?",
            f"It was designed by the engineer {q['engineer']}.",
            f"The engineer {q['engineer']} designed it.",
            [
                (f"It was designed by the engineer {wrong_engineer}.", "wrong_name"),
                (f"It was not designed by {q['engineer']}.", "contradiction"),
            ],
        ),
        (
            f"Tell me about the {q['museum']}.",
            f'The {q["museum"]} in {q["town"]} was founded in {q["founded"]} and "shows local crafts".',
            f"Founded in {q['founded']}, the {q['museum']} displays crafts from the area.",
            [
                (f"The {q['museum']} was founded in {int(q['founded']) - rng.randint(5, 40)}.", "wrong_date"),
                (f"The {q['museum']} in {q['town']} shows local crafts. {rng.choice(ABSENT_DETAILS)}", "absent"),
            ],
        ),
        (
            f"How many people live in {q['town']}?",
            f"{q['town']} has about {q['pop']:,} inhabitants.",
            f"Roughly {q['pop']:,} people live there.",
            [(f"{q['town']} has about {int(q['pop']) * 2:,} inhabitants.", "wrong_number")],
        ),
    ]
    return passage, cases


def build(seed: int, users: int = 24) -> list[Item]:
    """Several hundred items (about half grounded), the same for the same seed."""
    rng = random.Random(seed)
    items: list[Item] = []
    for _ in range(users):
        profile, place = _profile(rng), _place(rng)
        user_context = _user_context(profile, rng)
        passage, place_cases = _place_cases(place, rng)
        context = [*user_context, passage, rng.choice(FILLER_PASSAGES)]
        rng.shuffle(context)
        for question, exact, paraphrase, wrongs in [*_user_cases(profile, rng), *place_cases]:
            kind = rng.choice(["exact", "paraphrase", "partial"])
            good = {"exact": exact, "paraphrase": paraphrase, "partial": exact.split(", ")[0].rstrip(".") + "."}[kind]
            items.append(Item(question, context, _dress(rng, good), 1, kind))
            bad, bad_kind = rng.choice(wrongs)
            items.append(Item(question, context, _dress(rng, bad), 0, bad_kind))
    return items


def _dress(rng: random.Random, answer: str) -> str:
    """Pleasantries around the answer, as a chat model writes them."""
    opener = rng.choice(OPENERS)
    if opener.endswith(", ") and answer.split()[0] in LOWER_AFTER_COMMA:
        answer = answer[0].lower() + answer[1:]
    return (opener + answer + rng.choice(CLOSERS)).strip()
