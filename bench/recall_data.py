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

SEED = 20261123
START = datetime(2025, 1, 6, 8, 0)
DAYS = 680

RELATIONS = [
    "sister", "brother", "mum", "dad", "cousin", "best friend", "neighbour", "colleague", "aunt", "uncle",
    "grandmother", "flatmate", "boss", "niece", "nephew", "brother-in-law", "godmother", "stepdad",
]  # fmt: skip
PEOPLE = [
    "Ingrid", "Tomasz", "Priya", "Okonkwo", "Maren", "Lucien", "Fenella", "Dariusz", "Yusra", "Casimir",
    "Annelie", "Rafferty", "Solveig", "Emeka", "Giedre", "Bartholomew", "Noor", "Ximena", "Lorcan", "Hanne",
    "Teodor", "Marisol", "Kwabena", "Oona",
]  # fmt: skip
# Values that answer questions: each is used once, and none of them occurs in the chatter.
PET_NAMES = [
    "Pepperoni", "Mochi", "Biscotti", "Waffles", "Zeppelin", "Noodle", "Clementine", "Pickles", "Juniper",
    "Tofu", "Marzipan", "Gizmo", "Pretzel", "Socks", "Nimbus", "Dumpling", "Fandango", "Bramble", "Pistachio",
    "Quokka", "Paprika", "Truffle",
]  # fmt: skip
SPECIES = [
    ("beagle", "dog"), ("corgi", "dog"), ("whippet", "dog"), ("tabby kitten", "cat"), ("Maine Coon", "cat"),
    ("cockatiel", "bird"), ("budgie", "bird"), ("lop-eared rabbit", "bunny"), ("tortoise", "reptile"),
    ("Siamese", "cat"), ("dachshund", "dog"), ("ferret", "pet"),
]  # fmt: skip
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
]  # fmt: skip
COMPANIES = [
    "Voss Hydraulics", "Quillfeather Press", "Brightwater Analytics", "Halvorsen Marine", "Okapi Robotics",
    "Tamsin & Rowe", "Lumen Orthodontics", "Greystoke Logistics", "Peregrine Biotech", "Cobalt Cartography",
    "Marlowe Insurance", "Tamarisk Fintech", "Wexford Glassworks", "Ashgrove Brewery", "Nettlebed Studios",
    "Kestrel Avionics", "Saffron Telecom", "Ironbridge Architects",
]  # fmt: skip
JOBS = [
    "paramedic", "actuary", "sound engineer", "landscape gardener", "patent clerk", "welder", "copy editor",
    "pharmacist", "tram driver", "data analyst", "locksmith", "sommelier", "physiotherapist", "zookeeper",
]  # fmt: skip
TOWNS = [
    "Ghent", "Utrecht", "Aberystwyth", "Tromso", "Lyon", "Bologna", "Krakow", "Galway", "Inverness", "Porto",
    "Ljubljana", "Tallinn", "Bratislava", "Dundee", "Lausanne", "Valletta", "Freiburg", "Aarhus", "Cordoba",
    "Salzburg", "Lucerne", "Bergen", "Plovdiv", "Kilkenny", "Harrogate", "Whitby", "Durham", "Zagreb",
]  # fmt: skip
ALLERGENS = [
    "sesame", "shellfish", "walnuts", "kiwi fruit", "celery", "mustard seeds", "lupin flour", "buckwheat",
    "peanuts", "sulphites", "soya", "cashews",
]  # fmt: skip
MUSICIANS = [
    "Bjork", "Nick Cave", "Rosalia", "Sufjan Stevens", "Kraftwerk", "Nina Simone", "Fela Kuti", "Joni Mitchell",
    "Radiohead", "Aphex Twin", "Buena Vista Social Club", "Erykah Badu", "Portishead", "Leonard Cohen",
]  # fmt: skip
GIFTS = [
    "telescope", "fondue set", "ukulele", "espresso grinder", "kayak paddle", "bonsai kit", "pasta machine",
    "metronome", "hammock", "chess clock", "typewriter", "planisphere", "lino-cut set", "sextant",
]  # fmt: skip
ISLANDS = [
    "Madeira", "Zanzibar", "Tasmania", "Svalbard", "the Faroe Islands", "Sardinia", "Hokkaido", "Sri Lanka",
    "the Azores", "Mauritius", "Crete", "Vancouver Island", "Lofoten", "Corsica",
]  # fmt: skip
BABIES = [
    "Elodie", "Saoirse", "Ingeborg", "Philomena", "Anouk", "Rosamund", "Tallulah", "Ottavia", "Wren", "Zuzanna",
    "Maelle", "Briony", "Cosima", "Isadora",
]  # fmt: skip
HOBBIES = ["kintsugi", "bouldering", "lindy hop", "beekeeping", "calligraphy", "fencing", "woodturning", "kendo"]
BOOKS = ["The Left Hand of Darkness", "Middlemarch", "Piranesi", "Stoner", "Wolf Hall", "The Remains of the Day"]
CARS = ["Skoda Octavia", "Honda Jazz", "Volvo V70", "Fiat Panda", "Mazda MX-5", "Toyota Yaris"]
COLOURS = ["maroon", "teal", "silver", "mustard-yellow", "bottle-green"]
GYMS = ["Ironworks Gym", "Pulse Fitness", "Anvil Strength Club", "Lotus Yoga Loft", "Summit Climbing Wall"]
PARTNERS = ["Severin", "Ottilie", "Jovan", "Amaranta", "Leopold", "Wilhelmina"]
DOCTORS = ["Dr Abernathy", "Dr Okafor", "Dr Lindqvist", "Dr Castellanos", "Dr Wojcik", "Dr Fairweather"]
PLANTS = ["fiddle-leaf fig", "monstera", "bird of paradise", "string of pearls", "snake plant", "olive tree"]
PLANT_NAMES = ["Gerald", "Ottoline", "Barnaby", "Hortensia", "Ignatius", "Philippa"]
HERBS = ["coriander", "liquorice", "tarragon", "fennel tea", "anchovies", "marmite"]
TEAMS = ["Hibernian", "Sheffield Wednesday", "Feyenoord", "Sporting Lisbon", "Partick Thistle", "Celta Vigo"]
LANGUAGES = ["Portuguese", "Japanese", "Icelandic", "Welsh", "Korean", "Swahili"]
BLOOD = ["AB negative", "O negative", "B positive", "A negative"]
WIFI = ["MothershipGuest", "FluffyCloud5G", "PrettyFlyForWifi", "BagelNet", "GandalfsLair"]


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
