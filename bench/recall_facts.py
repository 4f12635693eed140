"""The facts of the labelled memory set: each a statement (or several, when it changes), a question in other words,
the assistant's reply, and later echoes that name the topic but never the value."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from bench.recall_words import (
    ALLERGENS,
    BABIES,
    BLOOD,
    BOOKS,
    CARS,
    COLOURS,
    COMPANIES,
    DOCTORS,
    GIFTS,
    GYMS,
    HERBS,
    HOBBIES,
    ISLANDS,
    JOBS,
    LANGUAGES,
    MONTHS,
    MUSICIANS,
    PARTNERS,
    PEOPLE,
    PET_NAMES,
    PLANT_NAMES,
    PLANTS,
    RELATIONS,
    SPECIES,
    TEAMS,
    TOWNS,
    WIFI,
)


@dataclass(slots=True)
class _Fact:
    kind: str
    statements: list[str]  # user messages; the last one is the answer (earlier ones are stale values)
    question: str
    answer: str
    replies: list[str]  # the assistant's reply to each statement: the topic again, never the value
    echoes: list[str] = field(default_factory=list)  # later user messages about the same person/topic, no value


class _Pools:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._pools: dict[str, list[Any]] = {}

    def take(self, name: str, items: list[Any]) -> Any:
        pool = self._pools.get(name)
        if pool is None:
            pool = list(items)
            self.rng.shuffle(pool)
            self._pools[name] = pool
        return pool.pop()


def _date_words(rng: random.Random, used: set[str]) -> str:
    while True:
        value = f"{rng.randint(1, 28)} {rng.choice(MONTHS)}"
        if value not in used:
            used.add(value)
            return value


def _number(rng: random.Random, used: set[str], digits: int) -> str:
    while True:
        value = str(rng.randint(10 ** (digits - 1), 10**digits - 1))
        if value not in used:
            used.add(value)
            return value


def _facts(rng: random.Random) -> list[_Fact]:
    pools = _Pools(rng)
    used: set[str] = set()
    pick = rng.choice
    facts: list[_Fact] = []
    relations = list(RELATIONS)
    people = dict(zip(relations, rng.sample(PEOPLE, len(relations)), strict=True))

    def rels(n: int) -> list[str]:
        return rng.sample(relations, n)

    for rel in rels(16):  # a relative's pet
        name, pet = people[rel], pools.take("pet", PET_NAMES)
        breed, species = pools.take("species", SPECIES * 2)
        facts.append(
            _Fact(
                "pet",
                [
                    pick(
                        [
                            f"{name}, my {rel}, just adopted a {breed} named {pet}. It chewed a slipper on day one.",
                            f"Big news from {name} (my {rel}): a {breed} called {pet} has moved in with them.",
                            f"My {rel} {name} finally got the {breed} they always wanted; they've named it {pet}.",
                        ]
                    )
                ],
                pick(
                    [
                        f"What's my {rel}'s {species} called?",
                        f"Remind me what the {species} my {rel} got is named?",
                        f"What name did my {rel} give their new {species}?",
                    ]
                ),
                pet,
                [f"How lovely for {name}! A {breed} is a big commitment, but such good company."],
                [f"{name} sent me about fifty photos of the {breed} today.", f"Visiting my {rel} this weekend."],
            )
        )
    for rel in rels(16):  # birthdays
        name, day = people[rel], _date_words(rng, used)
        facts.append(
            _Fact(
                "birthday",
                [
                    pick(
                        [
                            f"{name}'s birthday is on {day}, I need to find my {rel} something nice this year.",
                            f"Note to self: my {rel} {name} was born on {day}. Don't forget again like last year!",
                        ]
                    )
                ],
                pick(
                    [
                        f"When does my {rel} celebrate turning a year older?",
                        f"On what day is my {rel}'s birthday?",
                        f"Which date should I send my {rel} a card?",
                    ]
                ),
                day,
                [f"Good idea to plan ahead for {name}. Would you like some present ideas for your {rel}?"],
                [f"Do you think a book is a boring present for {name}?"],
            )
        )
    for rel in rels(14):  # a relative's job
        name, company, job = people[rel], pools.take("company", COMPANIES), pools.take("job", JOBS)
        facts.append(
            _Fact(
                "job",
                [
                    pick(
                        [
                            f"My {rel} {name} started as a {job} at {company} last week and already loves it.",
                            f"{name} got the job! My {rel} is the new {job} at {company}.",
                        ]
                    )
                ],
                pick([f"Which company does my {rel} work for now?", f"Who is my {rel}'s employer these days?"]),
                company,
                [f"Congratulations to {name}! Starting as a {job} is exciting; the first weeks are always intense."],
                [f"{name} says the commute to the new job is long."],
            )
        )
    for rel in rels(14):  # where a relative lives
        name, town = people[rel], pools.take("town", TOWNS)
        facts.append(
            _Fact(
                "lives",
                [
                    pick(
                        [
                            f"{name} (my {rel}) has settled in {town}, right by the river. I should visit.",
                            f"My {rel} {name} bought a little flat in {town}, so that's where they are now.",
                        ]
                    )
                ],
                pick([f"Which town is my {rel} based in?", f"Where has my {rel} made their home?"]),
                town,
                [f"A place by the river sounds wonderful. Do you think you'll visit {name} soon?"],
                [f"I miss my {rel}, we used to live so close."],
            )
        )
    for rel in rels(12):  # allergies
        name, food = people[rel], pools.take("allergen", ALLERGENS)
        facts.append(
            _Fact(
                "allergy",
                [
                    pick(
                        [
                            f"Dinner on Saturday. Careful: {name} can't have {food}, my {rel} is seriously allergic.",
                            f"My {rel} {name} had a reaction to {food} again, so that's off the menu when they visit.",
                        ]
                    )
                ],
                pick([f"What ingredient must I leave out when I cook for my {rel}?", f"What is my {rel} allergic to?"]),
                food,
                [f"Thanks for flagging it. I'll keep {name}'s allergy in mind when we plan the menu."],
                [f"What could I cook for {name} that feels a bit special?"],
            )
        )
    for rel in rels(14):  # gift ideas
        name, gift = people[rel], pools.take("gift", GIFTS)
        facts.append(
            _Fact(
                "gift",
                [f"For {name}'s present I'm thinking of a {gift}; my {rel} keeps hinting at one."],
                pick([f"What was my present idea for my {rel}?", f"What did I plan to buy my {rel} as a gift?"]),
                gift,
                [f"That sounds like a thoughtful present for {name}. Do you know which brand they'd like?"],
                [f"Wrapping paper for my {rel}'s present: stripes or stars?"],
            )
        )
    for rel in rels(14):  # favourite musician
        name, artist = people[rel], pools.take("artist", MUSICIANS)
        facts.append(
            _Fact(
                "music",
                [
                    pick(
                        [
                            f"{name} is completely obsessed with {artist}, my {rel} has every record.",
                            f"Got my {rel} {name} tickets to see {artist} live. They will scream.",
                        ]
                    )
                ],
                pick([f"Which musician is my {rel} a huge fan of?", f"Whose concerts does my {rel} love?"]),
                artist,
                [f"What a great gift! Live music with someone you love is the best. I hope {name} enjoys it."],
                [f"{name} played me some songs in the car, not really my style."],
            )
        )
    for rel in rels(10):  # a relative's phone changes: the newest number wins
        name = people[rel]
        old, new = _number(rng, used, 5), _number(rng, used, 5)
        facts.append(
            _Fact(
                "extension",
                [
                    f"My {rel} {name}'s desk extension at work is {old}, in case I ever need to call.",
                    f"{name} switched desks, so my {rel}'s work extension is {new} from now on.",
                ],
                f"What's my {rel}'s current office phone extension?",
                new,
                [f"Noted, it's handy to have {name}'s office line.", f"Got it, I'll remember {name}'s line changed."],
            )
        )

    for rel in rels(12):  # a relative's holiday
        name, place = people[rel], pools.take("island", ISLANDS)
        facts.append(
            _Fact(
                "holiday",
                [
                    pick(
                        [
                            f"{name} is off to {place} for three weeks, my {rel} has been planning it for ages.",
                            f"Jealous: my {rel} {name} booked flights to {place} for the summer.",
                        ]
                    )
                ],
                pick(
                    [
                        f"Where is my {rel} travelling on vacation?",
                        f"What destination did my {rel} pick for their trip?",
                    ]
                ),
                place,
                [f"Three weeks away sounds wonderful. I hope {name} gets good weather."],
                [f"{name} asked me to water the plants while they're away."],
            )
        )
    for rel in rels(12):  # a relative's baby
        name, baby = people[rel], pools.take("baby", BABIES)
        facts.append(
            _Fact(
                "baby",
                [
                    pick(
                        [
                            f"My {rel} {name} had a baby girl on Tuesday! They've called her {baby}.",
                            f"{name}'s little one arrived at last: {baby}, 3.4 kilos, all well. Proud of my {rel}.",
                        ]
                    )
                ],
                pick([f"What's the name of my {rel}'s newborn?", f"What did my {rel} name their daughter?"]),
                baby,
                [f"Congratulations to {name}! What wonderful news, I hope they're getting some sleep."],
                [f"Knitting a tiny hat for {name}'s baby, it's going badly."],
            )
        )

    # The user's own facts, one each.
    def own(kind: str, statement: str, question: str, answer: str, reply: str, echo: str = "") -> None:
        facts.append(_Fact(kind, [statement], question, answer, [reply], [echo] if echo else []))

    code = _number(rng, used, 4)
    own(
        "code",
        f"The new code for the bike shed padlock is {code}, written here so I don't lose it.",
        "What's the combination to get to my bicycle?",
        code,
        "Good idea to keep it somewhere safe.",
        "Someone left the bike shed open again, annoying.",
    )
    car, colour = pick(CARS), pick(COLOURS)
    own(
        "car",
        f"I finally bought a car: a second-hand {colour} {car} with only 40k on the clock!",
        "Which vehicle did I purchase?",
        car,
        "Congratulations on the new wheels! Enjoy the freedom.",
        "Parking near work is a nightmare now that I drive.",
    )
    own(
        "wifi",
        f"The guest wifi at home is called {pick(WIFI)}, password on the fridge.",
        "What's the name of our wireless network for visitors?",
        "",
        "Handy for when friends come over.",
    )
    facts[-1].answer = facts[-1].statements[0].split(" is called ")[1].split(",")[0]
    book = pick(BOOKS)
    own(
        "book",
        f"Just finished '{book}'. It's my favourite novel now, I cried at the end.",
        "Which book did I say I loved most?",
        book,
        "Books that make us cry stay with us. What moved you most?",
    )
    hobby = pick(HOBBIES)
    own(
        "hobby",
        f"I signed up for a {hobby} course on Thursday evenings, starting next month.",
        "What evening class did I enrol in?",
        hobby,
        "How exciting to learn something new! Have fun.",
    )
    doctor = pick(DOCTORS)
    own(
        "doctor",
        f"My new GP is {doctor}, lovely and she actually listens.",
        "Who is my family physician?",
        doctor,
        "It makes such a difference when a doctor listens.",
        "Need to book a check-up at the surgery.",
    )
    amount = _number(rng, used, 4)
    own(
        "savings",
        f"I'm putting aside {amount} pounds for the trip to Patagonia next year.",
        "How much money am I saving up for my holiday?",
        amount,
        "Patagonia! Saving steadily is the way.",
        "Looked at hiking boots for the big trip, expensive.",
    )
    plant, plant_name = pick(PLANTS), pick(PLANT_NAMES)
    own(
        "plant",
        f"Bought a {plant} for the balcony and named it {plant_name}.",
        "What did I call my new houseplant?",
        plant_name,
        "Naming plants is lovely. Water it sparingly at first!",
    )
    herb = pick(HERBS)
    own(
        "dislike",
        f"Honestly I can't stand {herb}, it tastes like soap to me.",
        "Which flavour do I hate?",
        herb,
        "Lots of people find that; it's partly genetic.",
    )
    team = pick(TEAMS)
    own(
        "team",
        f"I've supported {team} since I was six, through thick and thin.",
        "Which football club do I follow?",
        team,
        "Loyalty through thick and thin, that's real fandom.",
    )
    language = pick(LANGUAGES)
    own(
        "language",
        f"Started learning {language} on my phone, twenty minutes every morning.",
        "What language am I studying?",
        language,
        "Twenty minutes a day adds up quickly. Keep going!",
    )
    blood = pick(BLOOD)
    own(
        "blood",
        f"The clinic said my blood group is {blood}, so they asked me to donate more often.",
        "What blood type do I have?",
        blood,
        "Donating is a generous thing to do.",
    )
    dentist_time = f"{rng.randint(8, 11)}:{rng.choice(['05', '25', '35', '55'])}"
    own(
        "dentist",
        f"Dentist booked for the 14th at {dentist_time}, ugh.",
        "What time is my appointment for my teeth?",
        dentist_time,
        "Fingers crossed it's a quick one!",
    )

    # The user's own facts that change: the newest statement answers the question.
    towns = [pools.take("town", TOWNS) for _ in range(3)]
    facts.append(
        _Fact(
            "moved",
            [
                f"We signed the lease! Moving into a flat in {towns[0]} next month.",
                f"Big change: we've left the old place and moved to {towns[1]}.",
                f"Moved again, sigh. We live in {towns[2]} now, hopefully for good.",
            ],
            "Where do I currently live?",
            towns[2],
            ["Congratulations on the new flat!", "A new start, how exciting.", "Third time lucky, I hope you settle."],
        )
    )
    jobs = [pools.take("company", COMPANIES) for _ in range(2)]
    facts.append(
        _Fact(
            "employer",
            [
                f"I accepted the offer from {jobs[0]}, starting in March.",
                f"Handed in my notice. From Monday I work for {jobs[1]} instead.",
            ],
            "Which company employs me at the moment?",
            jobs[1],
            ["Well done on the offer!", "A brave move, good luck with the new role."],
        )
    )
    gyms = rng.sample(GYMS, 2)
    facts.append(
        _Fact(
            "gym",
            [
                f"Joined {gyms[0]} down the road, first session tomorrow.",
                f"Cancelled my old membership; I train at {gyms[1]} now, it has better hours.",
            ],
            "Where do I work out these days?",
            gyms[1],
            ["Exciting! Start gently.", "Good hours make it so much easier to keep going."],
        )
    )
    partners = rng.sample(PARTNERS, 2)
    facts.append(
        _Fact(
            "partner",
            [
                f"I've been seeing someone, {partners[0]}, we met at the climbing wall.",
                f"{partners[0]} and I split up a while ago. I'm happily dating {partners[1]} now.",
            ],
            "Who is my current partner?",
            partners[1],
            ["That's lovely, I'm happy for you.", "I'm glad you're happy now."],
        )
    )
    plates = [_number(rng, used, 6) for _ in range(2)]
    facts.append(
        _Fact(
            "locker",
            [
                f"My gym locker is number {plates[0]}, the one by the window.",
                f"They reshuffled the lockers; mine is {plates[1]} now.",
            ],
            "What's my locker number these days?",
            plates[1],
            ["Noted.", "Noted, the new one."],
        )
    )
    return facts


# -- chatter ---------------------------------------------------------------------------------------------------
