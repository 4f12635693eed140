"""Redact: personal data and secrets never enter a training example.

Every selected text goes through the checker's detector (``assistant.checks.privacy.find_pii``: cards, government
ids, IBANs, emails, phone numbers, IP and street addresses, API keys, tokens, passwords, private keys). What it
finds is replaced by the checker's placeholder (``[email]``, ``[card]``, ``[secret]``, ...) or the item is dropped:

- a statement or fact is kept, redacted, only while it still teaches something: the question/answer synthesis
  (``learning.qa.extract``) must still find a value in it that is no placeholder. "My card is 4111 ..." is the
  secret itself and is dropped; "My sister Ana, ana@example.com, is a nurse" keeps "sister Ana" and the job, and
  loses the address;
- a pair keeps its prompt redacted, and its target redacted unless the target held a secret or was mostly
  personal data (over half its characters): then the pair is dropped, since the answer was the data.

The replay buffer keeps only redacted items, so nothing redacted here comes back from disk later.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from learning.said import extract
from learning.select import Pair, Selection, Statement

if TYPE_CHECKING:
    from assistant.checks import Finding

MOSTLY = 0.5  # a target whose characters are more than this share personal data is dropped


@dataclass(slots=True)
class RedactionReport:
    """What redaction did, for the dry run: findings replaced and findings whose item was dropped, per type."""

    replaced: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    dropped_items: int = 0
    samples: list[str] = field(default_factory=list)  # a few redacted texts, to show what a placeholder looks like

    def to_dict(self) -> dict[str, Any]:
        return {
            "replaced": dict(sorted(self.replaced.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_items": self.dropped_items,
            "samples": list(self.samples),
        }

    def _count(self, counter: Counter[str], findings: list[Finding]) -> None:
        counter.update("secret" if f.secret else f.type for f in findings)


def redact_text(text: str) -> tuple[str, list[Finding]]:
    """The text with every finding replaced by its placeholder, and the findings."""
    from assistant.checks.privacy import find_pii, redact

    findings = find_pii(text)
    return (redact(text, findings) if findings else text), findings


def redact_selection(selection: Selection, samples: int = 3) -> tuple[Selection, RedactionReport]:
    """A copy of the selection with nothing sensitive left in it, and what was replaced or dropped."""
    report = RedactionReport()

    def keep_sample(text: str) -> None:
        if len(report.samples) < samples:
            report.samples.append(text)

    def statements(items: list[Statement]) -> list[Statement]:
        kept: list[Statement] = []
        for item in items:
            text, findings = redact_text(item.text)
            if not findings:
                kept.append(item)
            elif any(f.secret for f in findings) or not extract(text):
                report._count(report.dropped, findings)
                report.dropped_items += 1
            else:
                report._count(report.replaced, findings)
                keep_sample(text)
                kept.append(replace(item, text=text))
        return kept

    pairs: list[Pair] = []
    for pair in selection.pairs:
        prompt, in_prompt = redact_text(pair.prompt)
        target, in_target = redact_text(pair.target)
        pii_chars = sum(f.end - f.start for f in in_target)
        if any(f.secret for f in in_target) or pii_chars > MOSTLY * max(1, len(pair.target.strip())):
            report._count(report.dropped, in_prompt + in_target)
            report.dropped_items += 1
            continue
        if in_prompt or in_target:
            report._count(report.replaced, in_prompt + in_target)
            keep_sample(target if in_target else prompt)
        pairs.append(replace(pair, prompt=prompt, target=target))

    redacted = replace(
        selection,
        statements=statements(selection.statements),
        facts=statements(selection.facts),
        pairs=pairs,
    )
    return redacted, report
