"""Grounding: how well a reply is supported by its sources, and which of its sentences are not.

The reply is cut into sentences, and those into clauses before ", and ...", "; ..." and dashes (an invented detail
often rides on a true clause). Questions, offers and pleasantries claim nothing. Each claim is scored against the
sources (the conversation, the recalled memories, the facts; see ``assistant.checks.claims``) on two axes:

* **entities**: the names (capitalised words), numbers, dates and quoted strings it states must appear in a source,
  and for full credit in one of the claim's two closest source sentences ("your sister is Tofu" when Tofu is the
  cat); a wrong name, number or date is a small model's most common and most harmful slip, and embeddings barely
  see it ("born in 1987" and "born in 1978" are near-identical vectors);
* **meaning**: the best cosine between the claim and a source sentence (the bundled MiniLM embedder), blended with
  the share of its content words found in the sources; a negation that the closest source lacks (or the other way
  round) halves it, and claims about the user ("you live in ...") are held to a stricter bar.

A claim's support is ``meaning * entity_coverage ** 2`` (one missing entity of two leaves a quarter). The reply's
score is its weakest claim's support, so a score below :data:`THRESHOLD` always comes with at least one flagged
claim and one short reason. A reply with no sources scores None ("nothing to check against"), never 1, and so
does one whose sources are off-topic (no claim about the user, and no claim within RELEVANCE cosine of any source
sentence: a general question answered while memories about something else were recalled); one that claims
nothing (empty, or only pleasantries) scores 1. Token log-probabilities, when given, add flags (not score)
where the model itself was unsure.

THRESHOLD and the weights were tuned on the evaluation set of ``bench/check_grounding_data.py`` with seed 1 (a
grid over the weights, ``python -m bench.check_grounding --tune``; the threshold between the most accurate cut's
neighbours) and are reported on seed 2 by ``python -m bench grounding``.

Cost: one embed call per batch of replies, for their claims and only the source sentences that share a word with
them (a long context is not embedded whole); every vector is cached by its text between calls (a chat's context
repeats turn after turn, replies repeat sentences, and the lines of one conversation in `assistant check` share
their context), and so is each context's index. The embedder's cost is per token, so a sentence embedded once is
never embedded again while it stays in the cache. Nothing heavy is imported here: the embedder loads on the first
call that has sources.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from assistant.checks import Flag, Grounding
from assistant.checks.claims import (
    Sentence,
    SourceIndex,
    about_user,
    clauses,
    entities,
    index_sources,
    is_claim,
    key_words,
    negated,
    only_entities,
    split_sentences,
    supported,
    word_coverage,
)

if TYPE_CHECKING:
    from storage.embedder import Embedder

THRESHOLD = 0.52  # a reply (or sentence) scoring below this is "unsupported"; see the module docstring
SIM_FLOOR, SIM_CEIL = 0.25, 0.80  # cosines mapped linearly onto [0, 1] between these
SIM_WEIGHT = 0.8  # meaning = SIM_WEIGHT * scaled cosine + (1 - SIM_WEIGHT) * content-word coverage
USER_CLAIM_PENALTY = 0.15  # subtracted from a claim about the user's meaning: it needs a closer source
NEGATION_FACTOR = 0.5
LOW_LOGPROB = -2.5  # a token below this (p < 0.08) is unsure
# A single token this unlikely (p < 0.03) is flagged on its own. Chosen by reading the bundled SmolLM2's sampled
# replies, not tuned on a labelled set: its invented details ("born out of the mountains") sit at -3.8 to -4.4,
# isolated, while fluent text rarely goes below -3.
VERY_LOW_LOGPROB = -3.5
MIN_RUN = 2  # otherwise, this many unsure tokens in a row
MAX_CANDIDATES = 48  # source sentences embedded per reply, at most (see _candidates)
CACHE_SIZE = 8192  # sentence vectors kept between calls: 1.5 KB each (float32), 12 MB in all
CONTEXT_CHARS = 400_000  # indexed contexts kept between calls, up to this many characters of sources (~16 MB)
RELEVANCE = 0.35  # below this best cosine, and with no claim about the user, the sources are off-topic: None
TOP_K = 2  # an entity must appear in one of the claim's closest source sentences for full credit
ELSEWHERE = 0.5  # what an entity found only in other source sentences counts as missing

_default: Embedder | None = None
_default_lock = threading.Lock()
_cache: OrderedDict[str, Any] = OrderedDict()  # text -> its vector (a float32 array)
_cache_lock = threading.Lock()
_contexts: OrderedDict[tuple[str, ...], _Context] = OrderedDict()
_context_chars = [0]  # the characters of the sources in _contexts


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
    result = ground_many([(text, sources)], embedder=embedder)[0]
    if logprobs:
        result.flagged = sorted(result.flagged + _unsure_spans(text, logprobs), key=lambda f: (f.start, f.end))
    return result


def ground_many(items: Sequence[tuple[str, list[str]]], *, embedder: Embedder | None = None) -> list[Grounding]:
    """:func:`ground` for many (text, sources) pairs, in order, their sentences embedded together (a batch of
    `assistant check` lines costs far fewer embedder calls than one call per line)."""
    plans = [_plan(text, sources) for text, sources in items]
    todo = [p for p in plans if isinstance(p, _Plan) and p.candidates]
    vectors: dict[str, Any] = {}
    if todo:
        embedder = embedder or default_embedder()
        vectors = _vectors(
            [c.text for p in todo for c in _first(p)],
            [s for p in todo for s in p.candidates],
            embedder,
        )
        # The off-topic test needs one claim close to a source; when only a claim left out could be it, it is
        # embedded after all, so the answer is the one every claim's vector would give.
        late = [p for p in todo if not p.user and len(_first(p)) < len(p.claims) and _best(p, vectors) < RELEVANCE]
        if late:
            vectors |= _vectors([c.text for p in late for c in p.claims if c.text not in vectors], [], embedder)
    return [p if isinstance(p, Grounding) else _score(p, vectors) for p in plans]


@dataclass(slots=True)
class _Plan:
    """A reply's claims and what to compare them with, before anything is embedded."""

    claims: list[Sentence]
    index: SourceIndex
    candidates: list[str]
    # Per claim: it names something and no source has any of it. Its support is then 0 whatever its vector says
    # (see _support), so it is embedded only if the off-topic test needs it (see _first).
    hopeless: list[bool]
    user: bool  # some claim is about the user: the sources cannot be off-topic


def _first(plan: _Plan) -> list[Sentence]:
    """The claims whose vectors are needed for sure (a sixth of a typical reply's claims are hopeless)."""
    if not plan.user and all(plan.hopeless):
        return plan.claims  # the off-topic test needs at least one of them
    return [c for c, hopeless in zip(plan.claims, plan.hopeless, strict=True) if not hopeless]


def _best(plan: _Plan, vectors: dict[str, Any]) -> float:
    """The best cosine between a claim embedded so far and a source sentence."""
    have = [c.text for c in plan.claims if c.text in vectors]
    return max(_similarities(have, plan.candidates, vectors)[0], default=-1.0) if have else -1.0


@dataclass(slots=True)
class _Context:
    """One set of sources, indexed once (many replies are checked against the same context)."""

    index: SourceIndex
    keys: list[set[str]]  # each source sentence's key words
    chars: int  # the sources' length: what the cache counts


def clear_caches() -> None:
    """Forget every cached vector and indexed context (a benchmark's worst case: nothing seen before)."""
    with _cache_lock:
        _cache.clear()
        _contexts.clear()
        _context_chars[0] = 0
    _local_index.cache_clear()


def _context(sources: tuple[str, ...]) -> _Context:
    with _cache_lock:
        found = _contexts.get(sources)
        if found is not None:
            _contexts.move_to_end(sources)
            return found
    index = index_sources(list(sources))
    made = _Context(index, [key_words(s) for s in index.sentences], sum(map(len, sources)))
    with _cache_lock:
        if sources not in _contexts:
            _contexts[sources] = made
            _context_chars[0] += made.chars
        while _context_chars[0] > CONTEXT_CHARS and len(_contexts) > 1:
            _context_chars[0] -= _contexts.popitem(last=False)[1].chars
    return made


def _plan(text: str, sources: list[str]) -> _Plan | Grounding:
    live_sources = tuple(s for s in sources if s and s.strip())
    if not live_sources:
        return Grounding(score=None)
    claims = [c for s in split_sentences(text) for c in clauses(s) if is_claim(c.text)]
    if not claims:
        return Grounding(score=1.0)
    texts = [c.text for c in claims]
    context = _context(live_sources)
    index = context.index
    hopeless = [bool(found) and not any(supported(e, index) for e in found) for found in map(entities, texts)]
    user = any(about_user(t) for t in texts)
    return _Plan(claims, index, _candidates(texts, context), hopeless, user)


def _score(plan: _Plan, vectors: dict[str, Any]) -> Grounding:
    texts = [c.text for c in plan.claims]
    if plan.candidates:
        # A hopeless claim left unembedded (see ground_many) takes no part in the off-topic test; its support is
        # 0 with or without its closest sources.
        sims = [-1.0] * len(texts)
        nearest: list[list[int]] = [[] for _ in texts]
        have = [i for i, t in enumerate(texts) if t in vectors]
        if have:
            best, closest = _similarities([texts[i] for i in have], plan.candidates, vectors)
            for i, sim, near in zip(have, best, closest, strict=True):
                sims[i], nearest[i] = sim, near
    else:
        sims, nearest = _similarities(texts, plan.candidates, vectors)
    if max(sims) < RELEVANCE and not plan.user:
        # The sources are about something else (a general question while memories about the user were recalled):
        # nothing to check against, as with no sources at all, rather than every sentence "unsupported".
        return Grounding(score=None)
    flagged: list[Flag] = []
    scores: list[float] = []
    for claim, sim, near in zip(plan.claims, sims, nearest, strict=True):
        support, reason = _support(claim.text, sim, [plan.candidates[i] for i in near], plan.index)
        scores.append(support)
        if support < THRESHOLD:
            flagged.append(Flag(claim.start, claim.end, claim.text, reason))
    return Grounding(score=round(min(scores), 4), flagged=flagged)


# -- scoring ------------------------------------------------------------------------------------------------------


def _support(sentence: str, sim: float, near: list[str], index: SourceIndex) -> tuple[float, str]:
    """A sentence's support in [0, 1] and, for a weak one, why; ``near`` are its closest source sentences."""
    found = entities(sentence)
    missing = [e for e in found if not supported(e, index)]
    local = _local_index(tuple(near)) if found and near else index
    elsewhere = [e for e in found if e not in missing and not supported(e, local)]
    lost = len(missing) + ELSEWHERE * len(elsewhere)
    coverage = 1.0 - lost / len(found) if found else 1.0
    match = near[0] if near else ""
    lexical = word_coverage(sentence, index)
    scaled = min(1.0, max(0.0, (sim - SIM_FLOOR) / (SIM_CEIL - SIM_FLOOR)))
    meaning = 1.0 if only_entities(sentence, found) else SIM_WEIGHT * scaled + (1 - SIM_WEIGHT) * lexical
    user = about_user(sentence)
    if user:
        meaning = max(0.0, meaning - USER_CLAIM_PENALTY)
    opposite = negated(sentence) != negated(match) if match else False
    support = meaning * coverage**2 * (NEGATION_FACTOR if opposite else 1.0)
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
    elif opposite:
        reason = "the closest source says the opposite"
    elif user:
        reason = "a claim about you that no source supports"
    else:
        reason = "no source supports this"
    return max(0.0, min(1.0, support)), reason


@lru_cache(maxsize=4096)
def _local_index(near: tuple[str, ...]) -> SourceIndex:
    """The index of a claim's closest source sentences (the claims of one context keep meeting the same few)."""
    return index_sources(list(near))


def _candidates(claims: list[str], context: _Context) -> list[str]:
    """The source sentences worth embedding: those sharing a content word, name or number with some claim (a
    support that shares no word at all is rare, and embedding every sentence of a long context would cost more
    than the budget), at most MAX_CANDIDATES of them, the most overlapping first."""
    sentences = context.index.sentences
    wanted = set().union(*(key_words(c) for c in claims))
    overlap = [(len(wanted & keys), i) for i, keys in enumerate(context.keys)]
    kept = sorted((o for o in overlap if o[0] > 0), key=lambda o: (-o[0], o[1]))[:MAX_CANDIDATES]
    return [sentences[i] for _, i in sorted(kept, key=lambda o: o[1])]


def _similarities(
    claims: list[str], sources: list[str], vectors: dict[str, Any]
) -> tuple[list[float], list[list[int]]]:
    """For each claim, the best cosine to a source sentence and the indices of its TOP_K closest, best first."""
    if not sources:
        return [0.0] * len(claims), [[] for _ in claims]
    import numpy as np

    claim_vectors = np.stack([vectors[c] for c in claims])
    source_vectors = np.stack([vectors[s] for s in sources])
    cosines = claim_vectors @ source_vectors.T
    order = np.argsort(-cosines, axis=1)[:, :TOP_K]
    return [float(cosines[i, row[0]]) for i, row in enumerate(order)], [[int(j) for j in row] for row in order]


def _vectors(claims: list[str], sources: list[str], embedder: Embedder) -> dict[str, Any]:
    """A float32 vector for every claim and source sentence: each distinct text embedded once, in one call (the
    embedder groups texts of similar length), and none that the cache holds."""
    import numpy as np

    wanted = list(dict.fromkeys([*claims, *sources]))
    with _cache_lock:
        cached = {t: _cache[t] for t in wanted if t in _cache}
        for t in cached:
            _cache.move_to_end(t)
    todo = [t for t in wanted if t not in cached]
    # Copied row by row: a cached row must not keep its whole batch's matrix alive.
    fresh = {t: row.copy() for t, row in zip(todo, np.asarray(embedder.embed(todo), dtype=np.float32), strict=True)}
    with _cache_lock:
        _cache.update(fresh)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return cached | fresh


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
            if any(ch.isalnum() for ch in text[start:end]):  # an unlikely comma is no doubt about a fact
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
