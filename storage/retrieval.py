"""Pieces of hybrid retrieval that need no model: words, chunks, the lexical query, and score fusion.

Pure vector search misses what makes a personal memory specific: names, dates, numbers, rare words. BM25 over
FTS5 finds those but misses paraphrases. Both retrievers fill a candidate pool; each candidate's score is its cosine
similarity plus bounded bonuses: BM25 relative to the query's best hit, the IDF-weighted share of the query's words
it contains, the user's own words for a question about the user, a penalty for the assistant's own replies (they
repeat the user's topic and may invent the value), a penalty for a message too short to state a fact, and a mild
preference for newer messages, which decides between near-equal candidates (a fact that changed).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WORD = re.compile(r"\w+", re.UNICODE)

# Function words and chat filler: they match almost every message and drown the words that matter.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves ok okay yes yeah thanks thank please hi
    hello hey sure tell know remember said say told like get got also really one ever anything something does did
    let us again much many well must need needs want wants give take make made best
    """.split()
)

MIN_CHARS = 12  # "ok", "thanks!", "sure, go on": nothing to recall, and they crowd out real answers
MIN_WORDS = 3
CHUNK_WORDS = 160  # ~200-230 word pieces: under MiniLM's 256 limit with room for long words
CHUNK_OVERLAP = 32
MAX_CHUNKS = 16  # a pasted book still gets indexed lexically in full; vectors cover its first ~2,000 words

# Score fusion: tuned with bench/recall_tune.py on the labelled set of seed 42, checked on seed 7.
LEXICAL_WEIGHT = 0.04  # the best BM25 hit of the query gains this much over cosine
COVER_WEIGHT = 0.5  # a message holding every query word (IDF-weighted) gains this much
USER_BONUS = 0.05  # a question about "me"/"my" is answered by the user's own messages
# The assistant's replies repeat the user's topic and names, and a small model fills gaps by inventing values
# ("your wifi is Lumia 2033" for a network the user called PastelNet): what the user said comes first.
ASSISTANT_PENALTY = 0.15  # recall@5 +0.01 to +0.03 on seeds 42, 7 and the bench's; 0.05-0.2 all alike
SHORT_WORDS = 8  # content words for a message to count as a statement ("Visiting my sister this weekend." has 3)
SHORT_PENALTY = 0.24  # a message with a single content word loses about this much
RECENCY_WEIGHT = 0.02  # the newest candidate gains this much over the oldest: a tie-break
# Restatements: candidates holding the same query words (at least SAME_COVER of them, IDF-weighted) and scoring
# within SAME_MARGIN of the best of them say the same kind of thing: "my niece's extension is 96356", later
# "...my niece's extension is 21114". The newest of them moves up to just above the best. The margin is wide
# for a question about the present ("current", "now", "these days"), narrow otherwise: "who is our landlord?" may
# be answered by an older message naming another landlord that scores higher.
SAME_COVER = 0.3
SAME_MARGIN = 0.2
SAME_MARGIN_ANY = 0.02
PRESENT = re.compile(r"\b(current|currently|now|nowadays|these days|at the moment|latest|anymore|any more)\b", re.I)
LEXICAL_POOL = 50  # BM25 candidates (FTS ORDER BY rank LIMIT): the cost stays flat as the table grows
COMMON_SHARE = 0.04  # a word in more than this share of messages says little and costs a long posting list
KEEP_TERMS = 2  # ...but a query of common words only still searches its rarest ones
PERSONAL = frozenset({"i", "me", "my", "mine", "myself", "we", "our", "ours", "us"})

_SUFFIXES = ("ies", "ing", "ed", "es", "s", "ly")


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def stem(word: str) -> str:
    """A crude suffix strip, enough to match "allergic"/"allergy"-like pairs that FTS5's porter stemmer matched."""
    if word.endswith("'s"):
        word = word[:-2]
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:6] if len(word) > 6 else word


def significant(text: str) -> list[str]:
    """The query's content words, in order, once each: no stopwords, no single letters (digits stay)."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        seen.setdefault(word, None)
    return list(seen)


def personal(text: str) -> bool:
    """Whether a question is about the user ("my sister", "where do I live")."""
    return not PERSONAL.isdisjoint(words(text))


def covers(query: str, text: str) -> bool:
    """Whether ``text`` holds every content word of ``query`` (crudely stemmed): it is about the same thing."""
    wanted = {stem(w) for w in significant(query)}
    return bool(wanted) and wanted <= {stem(w) for w in significant(text)}


def worth_giving(query: str, text: str, score: float, floor: float) -> bool:
    """Whether a recalled message belongs in the prompt for ``query``.

    A small model follows whatever the prompt holds: an earlier chat about France turned "What is the capital of
    Japan?" into an answer about France. So below ``floor`` nothing goes in; the user's earlier asking of the same
    question holds no answer; and a question that is not about the user ("What is the capital of Japan?", no
    I/me/my) gets only messages about exactly what it asks, holding every one of its content words.
    """
    if score < floor or " ".join(text.lower().split()) == " ".join(query.lower().split()):
        return False
    return personal(query) or covers(query, text)


def about_present(text: str) -> bool:
    """Whether a question asks how things are now, so the newest of several statements should win."""
    return PRESENT.search(text) is not None


def worth_recalling(text: str) -> bool:
    """Whether a message says enough to be worth recalling."""
    return len(text.strip()) >= MIN_CHARS and len(words(text)) >= MIN_WORDS


def idf(df: int, total: int) -> float:
    """BM25's inverse document frequency: 0 for a word in every message, ~log(total) for a word in one."""
    return math.log(1 + (total - df + 0.5) / (df + 0.5))


def searchable(terms: Mapping[str, int], total: int) -> list[str]:
    """The query words worth an FTS lookup: found at all and not common, else the rarest few."""
    found = sorted((df, word) for word, df in terms.items() if df > 0)
    limit = max(3, int(total * COMMON_SHARE))
    keep = [word for df, word in found if df <= limit]
    return keep or [word for _, word in found[:KEEP_TERMS]]


def lexical_query(text: str | Sequence[str]) -> str:
    """An FTS5 query that ORs the significant words (quoted, so punctuation never breaks the syntax).

    AND-ing every word, as the history search does, misses a message that answers the question in other words.
    """
    terms = significant(text) if isinstance(text, str) else list(text)
    return " OR ".join(f'"{w}"' for w in terms)


def chunks(text: str) -> list[str]:
    """Overlapping windows of a long message, each short enough for the embedder; a short one is itself."""
    tokens = text.split()
    if len(tokens) <= CHUNK_WORDS:
        return [text]
    step = CHUNK_WORDS - CHUNK_OVERLAP
    out = [" ".join(tokens[start : start + CHUNK_WORDS]) for start in range(0, len(tokens) - CHUNK_OVERLAP, step)]
    return out[:MAX_CHUNKS]


@dataclass(frozen=True, slots=True)
class Doc:
    """What fusion needs to know of a candidate message."""

    text: str
    role: str
    created_at: str  # ISO 8601: sorts by time as a string


def fuse(
    vector: Sequence[tuple[int, float]],
    lexical: Sequence[tuple[int, float]],
    docs: Mapping[int, Doc],
    weights: Mapping[str, float],
    about_user: bool = True,
    present: bool = False,
) -> dict[int, float]:
    """Fuse (id, cosine) and (id, BM25) candidates into one score; higher is better.

    ``weights``: the query's significant words and their IDF. A message found only by its words gets the lowest
    cosine of the vector candidates (it ranked below all of them). The bonuses are bounded (at most
    LEXICAL_WEIGHT + COVER_WEIGHT + USER_BONUS + RECENCY_WEIGHT; the penalties at most ASSISTANT_PENALTY +
    SHORT_PENALTY), so the score stays on the cosine scale.
    """
    cosine = dict(vector)
    floor = min(cosine.values()) if cosine else 0.0
    best = max((score for _, score in lexical), default=0.0)
    bm25 = dict(lexical)
    stems: dict[str, float] = {}
    for word, weight in weights.items():
        stems[stem(word)] = max(stems.get(stem(word), 0.0), weight)
    mass = sum(stems.values())
    ids = [mid for mid in {**cosine, **bm25} if mid in docs]
    # Recency by rank among the candidates, oldest 0 to newest 1: scale-free, whatever the span of the history.
    order = {mid: n for n, mid in enumerate(sorted(ids, key=lambda m: (docs[m].created_at, m)))}
    span = max(len(ids) - 1, 1)
    scores: dict[int, float] = {}
    groups: dict[frozenset[str], list[int]] = {}
    for mid in ids:
        doc = docs[mid]
        content = {stem(w) for w in significant(doc.text)}
        score = cosine.get(mid, floor)
        if best > 0:
            score += LEXICAL_WEIGHT * bm25.get(mid, 0.0) / best
        matched = frozenset(s for s in stems if s in content)
        cover = sum(stems[s] for s in matched) / mass if mass > 0 else 0.0
        score += COVER_WEIGHT * cover
        if cover >= SAME_COVER:
            groups.setdefault(matched, []).append(mid)
        score -= SHORT_PENALTY * max(0.0, 1.0 - (len(content) - 1) / (SHORT_WORDS - 1))
        if about_user and doc.role == "user":
            score += USER_BONUS
        if doc.role == "assistant":
            score -= ASSISTANT_PENALTY
        score += RECENCY_WEIGHT * order[mid] / span
        scores[mid] = score
    for members in groups.values():
        top = max(scores[mid] for mid in members)
        margin = SAME_MARGIN if present else SAME_MARGIN_ANY
        close = [mid for mid in members if scores[mid] >= top - margin]
        newest = max(close, key=lambda m: order[m], default=None)
        if newest is not None and scores[newest] < top:
            scores[newest] = top + 1e-6  # just above the older statements; everything else keeps its place
    return scores
