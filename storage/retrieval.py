"""Pieces of hybrid retrieval that need no model: words, chunks, the lexical query, and rank fusion.

Pure vector search misses what makes a personal memory specific: names, dates, numbers, rare words. BM25 over
FTS5 finds those but misses paraphrases. Reciprocal rank fusion combines the two rankings without having to
calibrate cosine similarities against BM25 scores, and a small bonus for the query's rare tokens breaks ties
in favour of the message that names exactly what was asked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

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
    let us again much many well
    """.split()
)

MIN_CHARS = 12  # "ok", "thanks!", "sure, go on": nothing to recall, and they crowd out real answers
MIN_WORDS = 3
CHUNK_WORDS = 160  # ~200-230 word pieces: under MiniLM's 256 limit with room for long words
CHUNK_OVERLAP = 32
MAX_CHUNKS = 16  # a pasted book still gets indexed lexically in full; vectors cover its first ~2,000 words

RRF_K = 60  # the usual constant: rank 1 scores 1/61, rank 10 1/70; flattens the difference between top ranks
VECTOR_WEIGHT = 1.0
LEXICAL_WEIGHT = 1.0
RARE_WEIGHT = 0.5  # a message holding every rare query token gains half of a first-place rank
USER_WEIGHT = 1.05  # facts about the user are stated in the user's own messages


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def significant(text: str) -> list[str]:
    """The query's content words, in order, once each: no stopwords, no single letters (digits stay)."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        seen.setdefault(word, None)
    return list(seen)


def worth_recalling(text: str) -> bool:
    """Whether a message says enough to be worth recalling."""
    return len(text.strip()) >= MIN_CHARS and len(words(text)) >= MIN_WORDS


def lexical_query(text: str) -> str:
    """An FTS5 query that ORs the significant words (quoted, so punctuation never breaks the syntax).

    AND-ing every word, as the history search does, misses a message that answers the question in other words.
    """
    return " OR ".join(f'"{w}"' for w in significant(text))


def chunks(text: str) -> list[str]:
    """Overlapping windows of a long message, each short enough for the embedder; a short one is itself."""
    tokens = text.split()
    if len(tokens) <= CHUNK_WORDS:
        return [text]
    step = CHUNK_WORDS - CHUNK_OVERLAP
    out = [" ".join(tokens[start : start + CHUNK_WORDS]) for start in range(0, len(tokens) - CHUNK_OVERLAP, step)]
    return out[:MAX_CHUNKS]


def fuse(
    vector: Sequence[int],
    lexical: Sequence[int],
    contents: dict[int, str],
    roles: dict[int, str],
    rare: Iterable[str],
) -> dict[int, float]:
    """Reciprocal rank fusion of two rankings (best first), plus bonuses; higher is better.

    1.0 means first in both rankings; the rare-token bonus and the user factor can lift a score slightly above it.
    """
    rare = set(rare)
    scores: dict[int, float] = {}
    for weight, ranking in ((VECTOR_WEIGHT, vector), (LEXICAL_WEIGHT, lexical)):
        for rank, mid in enumerate(ranking, start=1):
            scores[mid] = scores.get(mid, 0.0) + weight / (RRF_K + rank)
    for mid in scores:
        if rare:
            found = rare.intersection(words(contents.get(mid, "")))
            scores[mid] += RARE_WEIGHT / (RRF_K + 1) * len(found) / len(rare)
        if roles.get(mid) == "user":
            scores[mid] *= USER_WEIGHT
    top = (VECTOR_WEIGHT + LEXICAL_WEIGHT) / (RRF_K + 1)
    return {mid: score / top for mid, score in scores.items()}
