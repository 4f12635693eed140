"""The checker on a chat turn: mask while the reply streams, ground it once it is stored, keep the verdict.

Privacy runs inside the stream (``assistant.checks.stream.StreamGuard``): what reaches the screen and the partial
writes is already masked, and the whole reply is checked once more at its end; that outcome is what is stored.
Grounding runs after the reply is stored, as an after-reply step (:class:`ReplyChecker`): the reply as shown is
scored against its sources, the spans where the model itself was unsure (token log-probabilities recorded while it
streamed) are added, and the verdict (:class:`assistant.checks.ReplyCheck`) is written with the message and given
to the caller as ``result.checks`` and ``result.badge``.

A reply's sources are what the user stated in the conversation (their questions and requests state nothing), the
remembered facts and the recalled snippets it was given (and, with the plugins, tool results). The assistant's own
earlier replies are not sources: a reply must not vouch for the one before it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from assistant.checks import Finding, Policy, ReplyCheck

if TYPE_CHECKING:
    from assistant.checks.privacy import PolicyOutcome
    from assistant.turn import Turn, TurnResult
    from storage.embedder import Embedder

# A user's sentence that asks for something states nothing to check a reply against.
_REQUEST = re.compile(
    r"^\W*(?:please\s+|ok(?:ay)?,?\s+|so,?\s+|now,?\s+)?(?:tell|explain|write|give|list|describe|summari[sz]e|show|"
    r"help|translate|compose|draft|create|make|generate|suggest|recommend|find|name|compare|define|calculate|"
    r"convert|what|who|whom|whose|where|when|why|how|which|can|could|would|will|should|shall|do|does|did|is|are|"
    r"was|were|let's|remind|answer|continue|go on|try|say|count|plan|check|fix|rewrite|summary)\b",
    re.I,
)


class Guard(Protocol):
    """What a turn needs of a stream guard (``assistant.checks.stream.StreamGuard``)."""

    policy: Policy
    user_inputs: tuple[str, ...]  # what the user typed in this conversation: theirs to see again

    def feed(self, text: str) -> str: ...

    def finish(self) -> tuple[str, PolicyOutcome]: ...


def stated(texts: Iterable[str]) -> list[str]:
    """The sentences of the user's messages that state something (a question or a request states nothing)."""
    from assistant.checks.claims import is_claim, split_sentences

    out: list[str] = []
    for text in texts:
        for sentence in split_sentences(text):
            words = sentence.text.strip()
            if words and is_claim(words) and not _REQUEST.match(words):
                out.append(words)
    return out


def sources_for(
    user_messages: Sequence[str], facts: Sequence[str], recalls: Sequence[str], tools: Sequence[str] = ()
) -> list[str]:
    """Everything a reply may rest on: the user's statements, the remembered facts, the recalled snippets and the
    results of tools called in the conversation."""
    return [*stated(user_messages), *facts, *recalls, *tools]


def make_guard(user_inputs: Sequence[str], policy: Policy) -> Guard | None:
    """The stream guard for a reply (None with privacy off: nothing to hold back, nothing detected)."""
    if policy == "off":
        return None
    from assistant.checks.stream import StreamGuard

    return StreamGuard(list(user_inputs), policy)


def privacy_items(outcome: PolicyOutcome | None) -> list[dict[str, Any]]:
    """The outcome's findings with offsets into the reply as shown (a masked value's are its placeholder's)."""
    if outcome is None:
        return []
    from assistant.checks.privacy import placeholder

    items: list[dict[str, Any]] = []
    shift = 0
    findings: list[Finding] = list(outcome.findings)
    for finding, action in zip(findings, outcome.actions, strict=True):
        if outcome.blocked:  # the reply shown is one sentence saying why: no offsets into it
            items.append({"type": finding.type, "start": 0, "end": 0, "action": action})
            continue
        start = finding.start + shift
        if action == "masked":
            width = len(placeholder(finding))
            shift += width - (finding.end - finding.start)
        else:
            width = finding.end - finding.start
        items.append({"type": finding.type, "start": start, "end": start + width, "action": action})
    return items


def shown_offsets(outcome: PolicyOutcome | None, logprobs: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Log-probabilities recorded at offsets into the raw reply, moved onto the reply as shown."""
    if outcome is None or not outcome.findings:
        return logprobs
    if outcome.blocked:
        return []
    from assistant.checks.stream import shown_offset

    return [(shown_offset(outcome, offset), logprob) for offset, logprob in logprobs]


class ReplyChecker:
    """The after-reply step that grounds a stored reply and stores the verdict with it."""

    __name__ = "checker"

    def __init__(self, policy: str, grounding: bool, embedder: Callable[[], Embedder | None] = lambda: None) -> None:
        self.policy = policy
        self.grounding = grounding
        self.embedder = embedder  # the memory's, when it is open: one embedder loaded, not two

    def __call__(self, turn: Turn, result: TurnResult) -> None:
        outcome = turn.privacy
        grounding = None
        if self.grounding:
            from assistant.checks.grounding import ground

            if outcome is not None and outcome.blocked:
                from assistant.checks import Grounding

                grounding = Grounding(score=None)  # nothing of the reply is shown to be checked
            else:
                logprobs = shown_offsets(outcome, turn.logprobs)
                grounding = ground(result.reply, list(turn.sources), logprobs, embedder=self.embedder())
        verdict = ReplyCheck(
            policy=self.policy,
            privacy=privacy_items(outcome),
            grounding=grounding,
            blocked=bool(outcome is not None and outcome.blocked),
            sources=len(turn.sources),
        )
        result.checks = verdict.to_dict()
        result.badge = verdict.badge
        turn.setup.store.update_message(result.message_id, checks=verdict.to_json(), badge=verdict.badge)
