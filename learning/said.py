"""What a user's statement says about them: ``(family, slot, value)`` triples found by rules (no model), for the
question/answer synthesis in ``learning.qa`` (its docstring lists the families). Values keep the user's words; the
answers turn them into the second person (:func:`second_person`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# -- vocabulary --------------------------------------------------------------------------------------------------------

PETS = "dog cat puppy kitten hamster parrot rabbit bunny horse pony fish goldfish bird turtle tortoise snake lizard"
PEOPLE = (
    "wife husband partner boyfriend girlfriend fiance fiancé fiancee fiancée son daughter brother sister "
    "mother mom mum mommy father dad daddy grandmother grandma granny grandfather grandpa aunt uncle cousin "
    "niece nephew friend boss manager colleague coworker co-worker neighbour neighbor roommate flatmate teacher "
    "doctor dentist therapist coach child kid baby twin stepson stepdaughter stepmother stepfather landlord "
    "mentor student"
)
ONLY_ONE = frozenset(
    "wife husband partner boyfriend girlfriend fiance fiancé fiancee fiancée mother mom mum mommy father dad daddy "
    "boss manager landlord".split()
)
PLURALS = {"child": "children", "wife": "wives", "puppy": "puppies", "baby": "babies", "fish": "fish"}
SINGULARS = {v: k for k, v in PLURALS.items()}
RELATIONS = PETS.split() + PEOPLE.split()
PET_WORDS = frozenset(PETS.split())
JOBS = frozenset(
    """accountant actor actress architect artist baker barber barista biologist bookkeeper builder butcher
    carpenter cashier chef chemist cleaner clerk coach consultant cook counsellor counselor dancer dentist designer
    developer doctor driver economist editor electrician engineer farmer firefighter fisherman gardener hairdresser
    historian illustrator journalist judge lawyer lecturer librarian mechanic midwife musician nanny nurse
    optician painter paramedic pharmacist photographer physician physicist physiotherapist pilot plumber poet
    policeman policewoman politician postman producer professor programmer psychologist receptionist reporter
    researcher salesman saleswoman scientist secretary singer soldier student surgeon tailor teacher technician
    therapist translator tutor vet veterinarian waiter waitress welder writer analyst administrator manager
    director ceo cto founder entrepreneur freelancer intern officer pharmacist radiologist sailor shopkeeper
    statistician surveyor teller trainer zookeeper""".split()
)
TRAITS = frozenset(
    """vegetarian vegan pescatarian diabetic celiac coeliac colorblind colourblind deaf blind introverted
    extroverted introvert extrovert married single divorced widowed engaged retired pregnant religious atheist
    christian muslim jewish buddhist hindu lactose-intolerant left-handed right-handed ambidextrous bilingual
    trilingual asthmatic epileptic sober teetotal autistic dyslexic nearsighted shortsighted short-sighted
    near-sighted tall short""".split()
)
NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}
MONTHS = "January February March April May June July August September October November December".split()
MONTH_ALIASES = {m.lower(): m for m in MONTHS} | {m[:3].lower(): m for m in MONTHS} | {"sept": "September"}

_REL = "|".join(sorted({*RELATIONS, *PLURALS.values(), *(r + "s" for r in RELATIONS)}, key=len, reverse=True))
_NAME_WORD = (
    r"(?!(?:The|This|That|It|He|She|We|They|You|My|Our|And|But|So|Today|Yesterday|Tomorrow|Who|What)\b)"
    r"[A-Z][a-zà-ÿ'’-]+"
)
_NAME = rf"{_NAME_WORD}(?:\s+{_NAME_WORD})?"
_NAMES = rf"{_NAME}(?:(?:,\s*|\s+and\s+){_NAME})*"
# An object phrase: a few words up to a connector, a clause end or a time phrase.
_STOPWORD = (
    r"(?:and|but|or|in|on|as|since|for|with|because|where|when|which|who|near|from|at|to|of|so|if|every|"
    r"each|last|this|these|those|now|today|yesterday|tonight|lately|recently|too|very|though|although|before|"
    r"after|during|while|until|whenever|around|about|than|like|into|by)"
)
_OBJ = rf"(?:(?:a|an|the|my|some)\s+)?[\w'’&.+-]+(?:\s+(?!{_STOPWORD}\b)[\w'’&.+-]+){{0,4}}"
_LINK = r"(?:(?:of|de|da|do|del|la|le|upon|on|am)\s+)?"  # "University of Porto", "Stratford upon Avon"
_PLACE_OBJ = rf"(?:(?:a|an|the)\s+)?[\w'’&.-]+(?:\s+{_LINK}(?!{_STOPWORD}\b)[\w'’&.-]+){{0,4}}"
_NUM = rf"(?:\d{{1,3}}|{'|'.join(NUMBER_WORDS)})"
_MONTH = "|".join(sorted(MONTH_ALIASES, key=len, reverse=True))
_DATE = (
    rf"(?:(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?i:{_MONTH})\.?(?:,?\s+\d{{4}})?"
    rf"|(?i:{_MONTH})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{4}}-\d{{2}}-\d{{2}})"
)
_I_AM = r"I(?:'m|’m|\s+am)"


@dataclass(slots=True, frozen=True)
class Said:
    """One thing a statement says: a family, a slot within it (a relation, a verb, ...; '' if none) and a value."""

    family: str
    slot: str
    value: str


def is_plural(rel: str) -> bool:
    return rel in SINGULARS or (rel.endswith("s") and rel[:-1] in RELATIONS)


def pluralise(rel: str) -> str:
    return PLURALS.get(rel, rel + "s")


# -- extraction -----------------------------------------------------------------------------------------------------

_ACTIVITY_VERBS = (
    "play|speak|drive|own|ride|collect|practise|practice|cook|grow|run|swim|knit|paint|write|read|watch|follow|"
    "support|volunteer at|teach|use|bake|sing|dance|climb|brew"
)
_STATE = (
    r"(?:allergic|afraid|scared|terrified|interested|good|bad|married|engaged|addicted|passionate|obsessed|"
    r"learning|studying|training|saving|planning|writing|building|reading|working)"
)
_TRAIT = "|".join(sorted(TRAITS, key=len, reverse=True))
_JOB = "|".join(sorted(JOBS))
_NAMED = r"(?:called\s+|named\s+)?"
_DISLIKE = (
    r"(?:hate|dislike|detest|can't\s+stand|can’t\s+stand|cannot\s+stand|don't\s+like|don’t\s+like|do\s+not\s+like)"
)
_REL_BIRTHDAY = rf"[Mm]y\s+(?:\w+\s+)?(?:{_REL})(?:'s|’s)\s+birthday"
_ANNIVERSARY = r"[Oo]ur\s+(?:wedding\s+)?anniversary|[Mm]y\s+(?:wedding\s+)?anniversary"
_DOING = "learning|studying|reading|writing|building"
_MY_NAME = r"(?:[Mm]y\s+name\s+is|[Mm]y\s+name's|[Cc]all\s+me|[Pp]eople\s+call\s+me)"
_YEARS = r"(?:\s+years?\s+old)?\b"
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (family, re.compile(pattern))
    for family, pattern in (
        ("name", rf"\b[Mm]y\s+(?P<slot>{_REL})(?:'s|’s)\s+names?\s+(?:is|are)\s+(?P<value>{_NAMES})"),
        ("name", rf"\b[Mm]y\s+(?P<slot>{_REL})\s+(?:is|are)\s+(?:called|named)\s+(?P<value>{_NAMES})"),
        ("name", rf"\b[Mm]y\s+(?:\w+\s+)?(?P<slot>{_REL}),?\s+{_NAMED}(?P<value>{_NAMES})"),
        (
            "name",
            rf"\bI\s+(?:have|had|got|adopted)\s+(?:an?|{_NUM})\s+(?:\w+\s+)?(?P<slot>{_REL}),?\s+{_NAMED}"
            rf"(?P<value>{_NAMES})",
        ),
        ("name", rf"(?:^|\.\s+|,\s+|\band\s+)(?P<value>{_NAME})\s+is\s+my\s+(?P<slot>{_REL})\b"),
        ("myname", rf"\b{_MY_NAME}\s+(?P<value>{_NAME})"),
        ("place", rf"\bI\s+(?:currently\s+|now\s+)?(?P<slot>live)\s+in\s+(?P<value>{_PLACE_OBJ})"),
        ("place", rf"\bI\s+(?:just\s+|recently\s+)?(?:moved|relocated)\s+to\s+(?P<value>{_PLACE_OBJ})"),
        ("place", rf"\b(?:{_I_AM}|I\s+come)\s+(?:originally\s+)?(?P<slot>from)\s+(?P<value>{_PLACE_OBJ})"),
        ("place", rf"\bI\s+(?P<slot>grew up)\s+in\s+(?P<value>{_PLACE_OBJ})"),
        ("place", rf"\bI\s+was\s+(?P<slot>born)\s+in\s+(?!(?i:{_MONTH})\b)(?P<value>(?:the\s+)?[A-Z]{_PLACE_OBJ})"),
        ("place", rf"\bI\s+(?:currently\s+)?(?P<slot>work)\s+(?:at|for)\s+(?P<value>{_PLACE_OBJ})"),
        ("place", rf"\bI\s+(?P<slot>study)\s+at\s+(?P<value>{_PLACE_OBJ})"),
        ("job", rf"\bI\s+work\s+as\s+(?P<value>(?:an?\s+)?{_OBJ})"),
        ("job", rf"\b[Mm]y\s+(?:job|profession|occupation)\s+is\s+(?P<value>{_OBJ})"),
        ("job", rf"\b{_I_AM}\s+(?P<value>an?\s+(?:[\w-]+\s+){{0,2}}(?:{_JOB}))\b"),
        ("likes", rf"\bI\s+(?:really\s+|absolutely\s+|also\s+)?(?:love|like|enjoy|adore)\s+(?P<value>{_OBJ})"),
        ("likes", rf"\b{_I_AM}\s+(?:a\s+(?:big|huge)\s+)?(?:fan\s+of|into)\s+(?P<value>{_OBJ})"),
        ("dislikes", rf"\bI\s+(?:really\s+)?{_DISLIKE}\s+(?P<value>{_OBJ})"),
        ("favourite", rf"\b[Mm]y\s+favou?rite\s+(?P<slot>[\w-]+(?:\s+[\w-]+)?)\s+(?:is|are)\s+(?P<value>{_OBJ})"),
        ("date", rf"\b(?P<slot>[Mm]y\s+birthday)\s+is\s+(?:on\s+)?(?P<value>{_DATE})"),
        ("date", rf"\bI\s+was\s+born\s+(?:on\s+)?(?P<value>{_DATE})"),
        ("date", rf"\bI\s+was\s+(?P<slot>born)\s+in\s+(?P<value>(?:(?i:{_MONTH})\s+)?\d{{4}})\b"),
        ("date", rf"\b(?P<slot>{_REL_BIRTHDAY}|{_ANNIVERSARY})\s+is\s+(?:on\s+)?(?P<value>{_DATE})"),
        ("age", rf"\b{_I_AM}\s+(?P<value>\d{{1,3}}){_YEARS}(?!\s*(?:%|kg|km|cm|minutes|hours))"),
        ("age", rf"\b[Mm]y\s+(?P<slot>{_REL})\s+is\s+(?P<value>\d{{1,3}}){_YEARS}"),
        ("count", rf"\bI\s+(?:have|'ve\s+got|’ve\s+got|have\s+got)\s+(?P<value>{_NUM})\s+(?P<slot>[a-z]+s|children)\b"),
        (
            "state",
            rf"\b{_I_AM}\s+(?:very\s+|really\s+|quite\s+|so\s+|currently\s+)?"
            rf"(?P<slot>{_STATE}\s+(?:to|of|in|at|about|for|on))\s+(?P<value>{_OBJ})",
        ),
        ("state", rf"\b{_I_AM}\s+(?:currently\s+)?(?P<slot>{_DOING})\s+(?P<value>{_OBJ})"),
        ("trait", rf"\b{_I_AM}\s+(?:a\s+|an\s+)?(?P<value>{_TRAIT})\b"),
        ("activity", rf"\bI\s+(?:also\s+|often\s+|usually\s+)?(?P<slot>{_ACTIVITY_VERBS})\s+(?P<value>{_OBJ})"),
        # "about" says something with a name or a number in it: "my car is a red Volvo", not "my code is failing"
        (
            "about",
            r"^\W*[Mm]y\s+(?P<slot>(?!favou?rite\b|name\b)[a-z][\w-]*(?:\s+[a-z][\w-]*)?)\s+"
            r"(?P<value>(?:is|are|was|has|lives|works)\s+(?![\w\s]*?\b\w+ing\b).*?(?:\b[A-Z][\w'’-]*|\d).*?)[.!]?$",
        ),
    )
]
_CLAUSE = re.compile(r"(?:that|about|how|what|why|when|where|if|whether|it|them|this|these|those)\b", re.I)
# "about" only when nothing more specific was said in the sentence.
_FALLBACK = {"about"}
# Values that are no values: pronouns, fillers, requests.
_EMPTY_VALUES = frozenset("it that this them him her you me to so too much a an the some".split())


def second_person(text: str) -> str:
    """First person to second: "my" -> "your", "I am" -> "you are", "me" -> "you"."""
    swaps = [
        (r"\bI am\b", "you are"), (r"\bI'm\b|\bI’m\b", "you're"), (r"\bI was\b", "you were"),
        (r"\bI've\b|\bI’ve\b", "you've"), (r"\bI'd\b|\bI’d\b", "you'd"), (r"\bI'll\b|\bI’ll\b", "you'll"),
        (r"\bI\b", "you"), (r"\bmyself\b", "yourself"), (r"\bmine\b", "yours"), (r"\bmy\b", "your"),
        (r"\bMy\b", "Your"), (r"\bme\b", "you"), (r"\bours\b", "yours"), (r"\bour\b", "your"), (r"\bOur\b", "Your"),
        (r"\bwe\b", "you"),
    ]  # fmt: skip
    for pattern, repl in swaps:
        text = re.sub(pattern, repl, text)
    return text


def _clean(value: str) -> str:
    value = value.strip(" ,;:.!?\"'“”")
    value = re.sub(r"\s+", " ", value)
    return value


def _slot(family: str, slot: str) -> str:
    slot = slot.strip().lower() if family not in ("date",) else slot.strip()
    if family == "date":
        slot = slot[:1].lower() + slot[1:]
        slot = re.sub(r"\s+", " ", slot)
    return slot


def extract(statement: str) -> list[Said]:
    """What a statement says about the user, family by family (empty when no template fits)."""
    found: list[Said] = []
    taken: set[tuple[str, str]] = set()
    for family, pattern in _PATTERNS:
        if family in _FALLBACK and found:
            continue
        for match in pattern.finditer(statement):
            groups = match.groupdict()
            slot = _slot(family, groups.get("slot") or "")
            value = _clean(groups["value"])
            if not value or value.lower() in _EMPTY_VALUES or "[" in value or _CLAUSE.match(value):
                continue  # nothing to teach, a value that was redacted away, or a clause ("I read that ...")
            if family == "place" and not slot:
                slot = "live"  # "I moved to ..."
            if family == "date" and not slot:
                slot = "my birthday"  # "I was born on 3 May 1990"
            if family == "count" and value.lower() in ("a", "an"):
                continue
            if (family, slot) in taken and family not in ("likes", "dislikes", "activity", "state", "trait"):
                continue
            taken.add((family, slot))
            found.append(Said(family, slot, value))
            if family == "name":
                for name in split_names(value):
                    rel = SINGULARS.get(slot, slot[:-1] if is_plural(slot) else slot)
                    found.append(Said("who", name, rel))
    return found


def split_names(value: str) -> list[str]:
    return [n.strip() for n in re.split(r",\s*|\s+and\s+", value) if n.strip()]
