"""Word pools for the labelled memory set (bench/recall_data.py): names, places, values no other message holds."""

from __future__ import annotations

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
