"""Grounding: how well a reply is supported by its sources, and which sentences are not.

Sentence by sentence. Each reply sentence that makes a claim is scored against the sources (the conversation, the
recalled memories, the facts) on two axes:

* **entities**: the names (capitalised words), numbers, dates and quoted strings it states must appear in some
  source; a wrong name, number or date is the small model's most common and most harmful slip, and embeddings
  barely see it ("born in 1987" and "born in 1978" are near-identical vectors);
* **meaning**: the best cosine between the sentence and any source sentence (the bundled MiniLM embedder), blended
  with the share of its content words found in the sources; a negation that the best-matching source lacks (or the
  other way round) counts against it.

A sentence's support is ``meaning * entity_coverage ** 2`` (one missing entity of two leaves a quarter), halved on a
negation mismatch. Claims about the user ("you live in ...", "your sister ...") are held to a stricter meaning bar.
The reply's score is its weakest claim's support; sentences below :data:`THRESHOLD` are flagged with one short
reason. Token log-probabilities, when given, add flags (not score) where the model itself was unsure.

THRESHOLD and the weights below were tuned on the evaluation set of ``bench/check_grounding_data.py`` with seed 1
(the threshold that maximises accuracy there, rounded) and are reported on seed 2 by ``python -m bench grounding``.

Nothing heavy is imported here: the embedder loads on the first call that has sources.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.checks import Flag, Grounding

if TYPE_CHECKING:
    from storage.embedder import Embedder

THRESHOLD = 0.52  # a reply (or sentence) scoring below this is "unsupported"; see the module docstring
SIM_FLOOR, SIM_CEIL = 0.25, 0.80  # cosines mapped linearly onto [0, 1] between these
SIM_WEIGHT = 0.8  # meaning = SIM_WEIGHT * scaled cosine + (1 - SIM_WEIGHT) * content-word coverage
USER_CLAIM_PENALTY = 0.15  # subtracted from a claim about the user's meaning: it needs a closer source
NEGATION_FACTOR = 0.5
LOW_LOGPROB = -2.5  # a token below this (p < 0.08) is unsure
VERY_LOW_LOGPROB = -5.0  # a single token this unlikely is flagged on its own
MIN_RUN = 2  # otherwise, this many unsure tokens in a row
EMBED_BATCH = 64  # sentences per embedder call; a typical reply and its sources fit in one
MAX_CANDIDATES = 48  # source sentences embedded per reply, at most (see _candidates)
CACHE_SIZE = 2048  # source sentence vectors kept between calls (a chat's context repeats turn after turn)

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
    r"you're welcome|no problem|glad (?:to|I could) help|i hope (?:this|that) helps|hope (?:this|that) helps|"
    r"is there anything else[^.!?]*|anything else[^.!?]*|"
    r"(?:i'm|i am) (?:sorry|afraid|not sure)[^.!?]*|i (?:don't|do not) (?:know|have|remember|recall)[^.!?]*)\W*$",
    re.I,
)
# Reporting phrases mention the user without claiming anything about them.
_REPORTING = re.compile(r"\b(?:from what |as )?you (?:told|mentioned|said|wrote)(?: (?:to )?me)?(?: that)?\b", re.I)
_CLAUSE_END = re.compile(r"(?:,\s+(?=(?:and|but|while|whereas|although)\s)|;\s+|\s+[—–]\s+)")
TOP_K = 2  # an entity must appear in one of the claim's closest source sentences for full credit
ELSEWHERE = 0.5  # what an entity found only in other source sentences counts as missing

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)")
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
class _Sentence:
    start: int
    end: int
    text: str


@dataclass(slots=True)
class _Sources:
    """What the sources say, indexed once per call."""

    sentences: list[str]
    words: set[str]  # lowercased word forms and their crude stems
    numbers: set[float]
    dates: list[tuple[int | None, int | None, int | None]]  # (year, month, day)
    text: str  # all sources, lowercased, whitespace collapsed (for quoted strings)


_default: Embedder | None = None
_default_lock = threading.Lock()
_cache: OrderedDict[str, list[float]] = OrderedDict()
_cache_lock = threading.Lock()


def default_embedder() -> Embedder:
    """The bundled embedder on one thread, created on first use (loading happens on its first embed)."""
    global _default
    with _default_lock:
        if _default is None:
            from storage.embedder import Embedder

            _default = Embedder(threads=1)
        return _default


def ground(
    text: str,
    sources: list[str],
    logprobs: list[tuple[int, float]] | None = None,
    *,
    embedder: Embedder | None = None,
) -> Grounding:
    """Score ``text`` against ``sources``: None with no sources, else [0, 1] and the flagged spans.

    ``logprobs`` are (character offset in ``text``, token log-probability) pairs, in order; runs of unlikely tokens
    are flagged as spans where the model was unsure.
    """
    unsure = _unsure_spans(text, logprobs) if logprobs else []
    live_sources = [s for s in sources if s and s.strip()]
    if not live_sources:
        return Grounding(score=None, flagged=unsure)
    claims = [c for s in split_sentences(text) for c in _clauses(s) if _is_claim(c.text)]
    if not claims:
        return Grounding(score=1.0, flagged=unsure)
    index = _index_sources(live_sources)
    candidates = _candidates([c.text for c in claims], index.sentences)
    sims, nearest = _similarities([c.text for c in claims], candidates, embedder or default_embedder())
    flagged: list[Flag] = []
    scores: list[float] = []
    for claim, sim, near in zip(claims, sims, nearest, strict=True):
        support, reason = _support(claim.text, sim, [candidates[i] for i in near], index)
        scores.append(support)
        if support < THRESHOLD:
            flagged.append(Flag(claim.start, claim.end, claim.text, reason))
    flagged = sorted(flagged + unsure, key=lambda f: (f.start, f.end))
    return Grounding(score=round(min(scores), 4), flagged=flagged)


# -- sentences ----------------------------------------------------------------------------------------------------


def split_sentences(text: str) -> list[_Sentence]:
    """Sentences with their offsets in ``text`` (abbreviations such as "Dr." do not end one)."""
    out: list[_Sentence] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if _ABBREVIATIONS.search(text[max(start, match.start() - 8) : match.start()]):
            continue
        _append(out, text, start, match.start())
        start = match.end()
    _append(out, text, start, len(text))
    return out


def _clauses(sentence: _Sentence) -> list[_Sentence]:
    """A sentence cut before ", and ...", "; ..." and dashes: an invented detail often rides on a true clause."""
    out: list[_Sentence] = []
    start = 0
    for match in _CLAUSE_END.finditer(sentence.text):
        _append(out, sentence.text, start, match.start())
        start = match.end()
    _append(out, sentence.text, start, len(sentence.text))
    return [_Sentence(sentence.start + c.start, sentence.start + c.end, c.text) for c in out]


def _append(out: list[_Sentence], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        lead = len(piece) - len(piece.lstrip())
        out.append(_Sentence(start + lead, start + lead + len(stripped), stripped))


def _is_claim(sentence: str) -> bool:
    """Questions, offers, pleasantries and admissions ("I'm not sure") state nothing to check, unless they name
    something ("I'm sorry, but Ana was born in 1990" still does)."""
    if sentence.rstrip().endswith("?"):
        return False
    if _entities(sentence, 0):
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


# -- entities -----------------------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class _Entity:
    kind: str  # name, number, date, quote
    text: str


def _entities(sentence: str, _: int) -> list[_Entity]:
    found: list[_Entity] = []
    taken: list[tuple[int, int]] = []
    for m in _DATE.finditer(sentence):
        found.append(_Entity("date", m.group(0)))
        taken.append(m.span())
    for m in _QUOTED.finditer(sentence):
        found.append(_Entity("quote", m.group(1)))
        taken.append(m.span())

    def free(span: tuple[int, int]) -> bool:
        return not any(a <= span[0] < b or a < span[1] <= b for a, b in taken)

    for m in _NUMBER.finditer(sentence):
        if free(m.span()):
            found.append(_Entity("number", m.group(0)))
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
        found.append(_Entity("name", word))
    return found


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


def _index_sources(sources: list[str]) -> _Sources:
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
    return _Sources(list(dict.fromkeys(sentences)), words, numbers, dates, joined)


def _supported(entity: _Entity, index: _Sources) -> bool:
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


# -- scoring ------------------------------------------------------------------------------------------------------


def _support(sentence: str, sim: float, near: list[str], index: _Sources) -> tuple[float, str]:
    """A sentence's support in [0, 1] and, for a weak one, why; ``near`` are its closest source sentences."""
    entities = _entities(sentence, 0)
    missing = [e for e in entities if not _supported(e, index)]
    local = _index_sources(near) if entities and near else index
    elsewhere = [e for e in entities if e not in missing and not _supported(e, local)]
    lost = len(missing) + ELSEWHERE * len(elsewhere)
    coverage = 1.0 - lost / len(entities) if entities else 1.0
    match = near[0] if near else ""
    content = [w for w in _words(sentence) if w.lower() not in _STOP and not w[0].isdigit()]
    found = [w for w in content if w.lower() in index.words or _stem(w) in index.words]
    lexical = len(found) / len(content) if content else 1.0
    scaled = min(1.0, max(0.0, (sim - SIM_FLOOR) / (SIM_CEIL - SIM_FLOOR)))
    meaning = SIM_WEIGHT * scaled + (1 - SIM_WEIGHT) * lexical
    about_user = bool(_USER_WORDS.search(_REPORTING.sub(" ", sentence)))
    if about_user:
        meaning = max(0.0, meaning - USER_CLAIM_PENALTY)
    negated = _negated(sentence) != _negated(match) if match else False
    support = meaning * coverage**2 * (NEGATION_FACTOR if negated else 1.0)
    if missing:
        first = missing[0]
        label = {"name": "the name", "number": "the number", "date": "the date", "quote": "the quote"}[first.kind]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        reason = f"{label} '{first.text}' appears in no source{more}"
    elif elsewhere:
        label = {"name": "the name", "number": "the number", "date": "the date", "quote": "the quote"}[
            elsewhere[0].kind
        ]
        reason = f"{label} '{elsewhere[0].text}' is in the sources, but not with this"
    elif negated:
        reason = "the closest source says the opposite"
    elif about_user:
        reason = "a claim about you that no source supports"
    else:
        reason = "no source supports this"
    return max(0.0, min(1.0, support)), reason


def _negated(sentence: str) -> bool:
    lower = sentence.lower().replace("’", "'")
    return "n't" in lower or any(w in _NEGATIONS for w in re.findall(r"[a-z']+", lower))


def _key_words(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if w.lower() not in _STOP}


def _candidates(claims: list[str], sentences: list[str]) -> list[str]:
    """The source sentences worth embedding: those sharing a content word, name or number with some claim (a
    support that shares no word at all is rare, and embedding every sentence of a long context would cost more
    than the budget), at most MAX_CANDIDATES of them, the most overlapping first."""
    wanted = set().union(*(_key_words(c) for c in claims))
    overlap = [(len(wanted & _key_words(s)), i) for i, s in enumerate(sentences)]
    kept = sorted((o for o in overlap if o[0] > 0), key=lambda o: (-o[0], o[1]))[:MAX_CANDIDATES]
    return [sentences[i] for _, i in sorted(kept, key=lambda o: o[1])]


def _similarities(claims: list[str], sources: list[str], embedder: Embedder) -> tuple[list[float], list[list[int]]]:
    """For each claim, the best cosine to a source sentence and the indices of its TOP_K closest, best first."""
    if not sources:
        return [0.0] * len(claims), [[] for _ in claims]
    import numpy as np

    with _cache_lock:
        todo = [s for s in sources if s not in _cache]
    texts = list(dict.fromkeys([*claims, *todo]))
    vectors = dict(zip(texts, _embed(embedder, texts), strict=True))
    with _cache_lock:
        for s in todo:
            _cache[s] = vectors[s]
            _cache.move_to_end(s)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        source_vectors = np.array([vectors.get(s) or _cache[s] for s in sources], dtype=np.float32)
    claim_vectors = np.array([vectors[c] for c in claims], dtype=np.float32)
    cosines = claim_vectors @ source_vectors.T
    order = np.argsort(-cosines, axis=1)[:, :TOP_K]
    return [float(cosines[i, row[0]]) for i, row in enumerate(order)], [[int(j) for j in row] for row in order]


def _embed(embedder: Embedder, texts: list[str]) -> list[list[float]]:
    """One embed call for a typical reply; a huge one goes in batches of similar lengths (less padding)."""
    if len(texts) <= EMBED_BATCH:
        return embedder.embed(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[list[float]] = [[] for _ in texts]
    for at in range(0, len(order), EMBED_BATCH):
        chunk = order[at : at + EMBED_BATCH]
        for i, vector in zip(chunk, embedder.embed([texts[i] for i in chunk]), strict=True):
            out[i] = vector
    return out


# -- log-probabilities --------------------------------------------------------------------------------------------


def _unsure_spans(text: str, logprobs: Iterable[tuple[int, float]]) -> list[Flag]:
    """Runs of unlikely tokens (or one very unlikely token), widened to whole words."""
    tokens = sorted((max(0, min(len(text), int(o))), float(lp)) for o, lp in logprobs if not math.isnan(lp))
    flags: list[Flag] = []
    run: list[int] = []  # indices into tokens

    def close() -> None:
        if not run:
            return
        lowest = min(tokens[i][1] for i in run)
        if len(run) >= MIN_RUN or lowest <= VERY_LOW_LOGPROB:
            start = tokens[run[0]][0]
            end = tokens[run[-1] + 1][0] if run[-1] + 1 < len(tokens) else len(text)
            # Tokens carry their leading space; a token that starts or ends inside a word takes the whole word.
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            while 0 < start < end and text[start - 1].isalnum() and text[start].isalnum():
                start -= 1
            while start < end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
                end += 1
            if end > start:
                p = math.exp(lowest)
                flags.append(Flag(start, end, text[start:end], f"the model was unsure here (p = {p:.2f})"))
        run.clear()

    for i, (_, logprob) in enumerate(tokens):
        if logprob < LOW_LOGPROB:
            run.append(i)
        else:
            close()
    close()
    merged: list[Flag] = []
    for flag in flags:
        if merged and flag.start <= merged[-1].end:
            last = merged.pop()
            end = max(last.end, flag.end)
            flag = Flag(last.start, end, text[last.start : end], last.reason)
        merged.append(flag)
    return merged
