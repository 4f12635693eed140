"""What a reply claims and what its sources say: sentences and clauses with offsets, the names, numbers, dates and
quoted strings in them, and an index of the sources to check those against. Plain text work, no model: the
grounding check (``assistant.checks.grounding``) adds the embeddings and the scoring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_STOP = frozenset(
    """a an the and or but if then so as of in on at to for from by with about into over under after before
    between through during without within is are was were be been being am do does did done has have had having
    it its it's this that these those there here what which who whom whose when where why how all any both each
    few more most other some such no nor not only own same than too very can could will would shall should may
    might must just also still yet again ever even i me my mine myself we us our ours you your yours yourself
    he him his she her hers they them their theirs one ones s t d ll m re ve don't doesn't didn't isn't aren't
    wasn't weren't won't wouldn't can't couldn't shouldn't i'm you're you've you'll i've i'll i'd you'd let let's
    sure yes okay ok well oh hi hello thanks thank please like really quite much many lot lots get got go going
    know think said say says tell told want wanted need needs make made thing things something anything way""".split()
)
# Capitalised at a sentence's start without being a name.
_STARTERS = _STOP | frozenset(
    """based according remember note great good glad sounds absolutely certainly of course yes no sorry
    unfortunately actually also besides however therefore overall finally first second third next last then
    today tomorrow yesterday currently recently usually often sometimes always never perhaps maybe
    definitely indeed interesting happy enjoy keep try feel hope looks seems since while because although though
    once during given considering as per in on at""".split()
)
_NEGATIONS = frozenset("not no never none nobody nothing neither nor n't cannot without".split())
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        "january february march april may june july august september october november december".split()
    )
}
_MONTHS.update({k[:3]: v for k, v in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "hundred": 100, "dozen": 12})
_USER_WORDS = re.compile(r"\b(?:you|your|yours|yourself)\b", re.I)
_NOT_A_CLAIM = re.compile(
    r"\b(?:if you|you (?:can|could|should|might|may|will want|would like|need to|want to)|let me know|"
    r"do you|would you|feel free|hope you)\b",
    re.I,
)

_PLEASANTRY = re.compile(
    r"^\W*(?:(?:good|great|nice|interesting) question|sure|of course|certainly|absolutely|happy to help|"
    r"you're welcome|no problem|(?:i'm |i am )?(?:glad|happy) (?:to help|i could help|to assist)|"
    r"(?:i'm|i am) here to help|i hope (?:this|that) helps|hope (?:this|that) helps|"
    r"is there anything else[^.!?]*|anything else[^.!?]*|"
    r"(?:i'm|i am) (?:sorry|afraid|not sure)[^.!?]*|i (?:don't|do not) (?:know|have|remember|recall)[^.!?]*)\W*$",
    re.I,
)
# Reporting phrases mention the user without claiming anything about them.
_REPORTING = re.compile(r"\b(?:from what |as )?you (?:told|mentioned|said|wrote)(?: (?:to )?me)?(?: that)?\b", re.I)
_CLAUSE_END = re.compile(r"(?:,\s+(?=(?:and|but|while|whereas|although)\s)|;\s+|\s+[—–]\s+)")
# Chat replies use line breaks for paragraphs, list items and headings: each line ends a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*[ \t]+(?=[\"'(\[]?[A-Z0-9])|[ \t]*\n\s*")
_LIST_MARKER = re.compile(r"(?:[-*•+]|\d{1,3}[.)])[ \t]+")
_ABBREVIATIONS = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|St|Sr|Jr|vs|etc|e\.g|i\.e|approx|No|Mt|Ave|Inc|Ltd)\.$")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d[\d,]*(?:\.\d+)?")
_CAPITALISED = re.compile(r"\b[A-Z][a-zA-Z'’-]*[a-zA-Z]\b|\b[A-Z]\b(?=\.)")
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\d])")
_QUOTED = re.compile(r"[\"“]([^\"”\n]{2,80})[\"”]")
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE = re.compile(
    rf"\b(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}|"
    rf"(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTH_NAMES})\.?(?:,?\s+\d{{4}})?)|"
    rf"(?:(?:{_MONTH_NAMES})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?)|"
    rf"(?:(?:{_MONTH_NAMES})\s+\d{{4}}))\b",
    re.I,
)


@dataclass(slots=True)
class Sentence:
    start: int
    end: int
    text: str


@dataclass(slots=True)
class SourceIndex:
    """What the sources say, indexed once per call."""

    sentences: list[str]
    words: set[str]  # lowercased word forms and their crude stems
    numbers: set[float]
    dates: list[tuple[int | None, int | None, int | None]]  # (year, month, day)
    text: str  # all sources, lowercased, whitespace collapsed (for quoted strings)


def split_sentences(text: str) -> list[Sentence]:
    """Sentences with their offsets in ``text`` (abbreviations such as "Dr." do not end one)."""
    out: list[Sentence] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if _ABBREVIATIONS.search(text[max(start, match.start() - 8) : match.start()]):
            continue
        if "\n" not in match.group(0) and re.fullmatch(r"\s*\d{1,3}\.", text[start : match.start()]):
            continue  # "1. Miso": a list item's number, not a sentence
        _append(out, text, start, match.start())
        start = match.end()
    _append(out, text, start, len(text))
    return out


def clauses(sentence: Sentence) -> list[Sentence]:
    """A sentence cut before ", and ...", "; ..." and dashes: an invented detail often rides on a true clause."""
    out: list[Sentence] = []
    start = 0
    for match in _CLAUSE_END.finditer(sentence.text):
        _append(out, sentence.text, start, match.start())
        start = match.end()
    _append(out, sentence.text, start, len(sentence.text))
    return [Sentence(sentence.start + c.start, sentence.start + c.end, c.text) for c in out]


def _append(out: list[Sentence], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    lead = len(piece) - len(piece.lstrip())
    marker = _LIST_MARKER.match(stripped)
    if marker:  # "1. " or "- " before a list item is layout, not a number or a claim
        lead += marker.end()
        stripped = stripped[marker.end() :]
    if stripped:
        out.append(Sentence(start + lead, start + lead + len(stripped), stripped))


def is_claim(sentence: str) -> bool:
    """Questions, offers, pleasantries and admissions ("I'm not sure") state nothing to check, unless they name
    something ("I'm sorry, but Ana was born in 1990" still does)."""
    if sentence.rstrip().endswith("?") or sentence.startswith(("#", "```")):
        return False  # a question, a heading or a code fence
    if entities(sentence):
        return True
    plain = sentence.replace("’", "'")
    content = [w for w in _words(plain) if w.lower() not in _STOP]
    if _PLEASANTRY.match(plain):
        return False
    if _NOT_A_CLAIM.search(plain) and len(content) < 6:
        return False
    return len(content) >= 1


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _stem(word: str) -> str:
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@dataclass(slots=True, frozen=True)
class Entity:
    kind: str  # name, number, date, quote
    text: str


def entities(sentence: str) -> list[Entity]:
    """The names, numbers, dates and quoted strings a sentence states, in that order of search."""
    return list(_entities(sentence))


@lru_cache(maxsize=4096)
def _entities(sentence: str) -> tuple[Entity, ...]:
    # Cached: a claim is asked for its entities when it is found, planned and scored.
    found: list[Entity] = []
    taken: list[tuple[int, int]] = []
    for m in _DATE.finditer(sentence):
        found.append(Entity("date", m.group(0)))
        taken.append(m.span())
    for m in _QUOTED.finditer(sentence):
        found.append(Entity("quote", m.group(1)))
        taken.append(m.span())

    def free(span: tuple[int, int]) -> bool:
        return not any(a <= span[0] < b or a < span[1] <= b for a, b in taken)

    for m in _NUMBER.finditer(sentence):
        if free(m.span()):
            found.append(Entity("number", m.group(0)))
    first = re.match(r"\W*", sentence)
    first_start = first.end() if first else 0
    for m in _CAPITALISED.finditer(sentence):
        word = m.group(0)
        lower = word.lower().replace("’", "'")
        if not free(m.span()) or lower in _MONTHS or lower in _STOP or word == "I":
            continue
        # At a sentence's start any word is capitalised: adverbs and participles there are not names.
        if m.start() == first_start and (lower in _STARTERS or lower.endswith(("ly", "ed", "ing"))):
            continue
        found.append(Entity("name", word))
    return tuple(found)


def _parse_date(text: str) -> tuple[int | None, int | None, int | None]:
    lower = text.lower()
    iso = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", lower)
    if iso:
        return int(iso.group(1)), int(iso.group(2)), int(iso.group(3))
    slash = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{2,4})", lower)
    if slash:  # day/month/year, as most of the world writes it
        return int(slash.group(3)), int(slash.group(2)), int(slash.group(1))
    month = next((v for k, v in _MONTHS.items() if re.search(rf"\b{k}\b", lower)), None)
    year_m = re.search(r"\b(\d{4})\b", lower)
    day_m = re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?\b", re.sub(r"\b\d{4}\b", "", lower))
    return (int(year_m.group(1)) if year_m else None, month, int(day_m.group(1)) if day_m else None)


def _number_value(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def index_sources(sources: list[str]) -> SourceIndex:
    sentences: list[str] = []
    words: set[str] = set()
    numbers: set[float] = set()
    dates: list[tuple[int | None, int | None, int | None]] = []
    for source in sources:
        sentences.extend(s.text for s in split_sentences(source))
        for word in _words(source):
            lower = word.lower().replace("’", "'")
            words.update((lower, _stem(lower)))
            if lower in _NUMBER_WORDS:
                numbers.add(float(_NUMBER_WORDS[lower]))
        for m in _NUMBER.finditer(source):
            value = _number_value(m.group(0))
            if value is not None:
                numbers.add(value)
        dates.extend(_parse_date(m.group(0)) for m in _DATE.finditer(source))
    # Dates' parts count as numbers too: "in 2019" is supported by "on 3 May 2019".
    for year, month, day in dates:
        numbers.update(float(x) for x in (year, month, day) if x is not None)
    joined = re.sub(r"\s+", " ", " ".join(sources).lower())
    return SourceIndex(list(dict.fromkeys(sentences)), words, numbers, dates, joined)


def supported(entity: Entity, index: SourceIndex) -> bool:
    if entity.kind == "name":
        lower = entity.text.lower().replace("’", "'")
        return lower in index.words or _stem(lower) in index.words
    if entity.kind == "number":
        value = _number_value(entity.text)
        return value is None or value in index.numbers
    if entity.kind == "quote":
        return re.sub(r"\s+", " ", entity.text.lower()).strip() in index.text
    year, month, day = _parse_date(entity.text)
    for y, m, d in index.dates:
        if all(a is None or b is None or a == b for a, b in ((year, y), (month, m), (day, d))):
            if (month is None or m is not None) and (day is None or d is not None):
                return True
    # "March 2019" against a source that only says "in 2019 ... in March" still counts.
    return (
        day is None
        and (year is None or float(year) in index.numbers)
        and (month is None or any(k in index.words for k, v in _MONTHS.items() if v == month))
    )


def negated(sentence: str) -> bool:
    lower = sentence.lower().replace("’", "'")
    return "n't" in lower or any(w in _NEGATIONS for w in re.findall(r"[a-z']+", lower))


def key_words(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if w.lower() not in _STOP}


def about_user(sentence: str) -> bool:
    """Whether the sentence says something about the user ("you live in ...", "your sister ...")."""
    return bool(_USER_WORDS.search(_REPORTING.sub(" ", sentence)))


def word_coverage(sentence: str, index: SourceIndex) -> float:
    """The share of the sentence's content words (numbers aside: entities cover them) found in the sources."""
    content = [w for w in _words(sentence) if w.lower() not in _STOP and not w[0].isdigit()]
    found = [w for w in content if w.lower() in index.words or _stem(w) in index.words]
    return len(found) / len(content) if content else 1.0


def only_entities(sentence: str, found: list[Entity]) -> bool:
    """Whether the sentence is nothing but its entities ("Miso" as a list item, "14 March 1990."): its meaning is
    then theirs, and a bare name has no sentence meaning to compare."""
    covered = {w.lower() for e in found for w in _words(e.text)}
    return bool(found) and all(w.lower() in covered or w.lower() in _STOP for w in _words(sentence))
