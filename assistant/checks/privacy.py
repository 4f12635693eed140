"""Personal data and secrets in a text: what they are, where they are, and what a reply may show of them.

``find_pii`` finds email addresses, phone numbers, payment cards, IBANs, government ids, IP addresses, street
addresses, API keys, tokens, passwords and private keys. It builds on presidio-analyzer's pattern recognizers (called
directly: no spaCy model is installed here, and context words are checked below instead) and detect-secrets
(``scan_line``, entropy plugins off: with entropy on, ordinary prose gave dozens of false hits), with validators of
its own where they fall short: Luhn for cards, ISO 7064 mod 97 for IBANs, the SSA's rules for SSNs, libphonenumber's
validity for phones, and hard negatives (order numbers, dates, versions, hashes) that must not be flagged.

Placeholders (``redact``): a finding becomes ``[type]``: ``[email]``, ``[phone]``, ``[card]``, ``[iban]``, ``[ssn]``,
``[national_id]``, ``[ip]``, ``[address]``; every secret (``api_key``, ``token``, ``password``, ``private_key``)
becomes ``[secret]``, so a masked reply never says which kind of credential stood there.

No network: presidio's email recognizer would ask tldextract, which fetches the public suffix list; its check is
replaced here, and the list's URLs are emptied before anything imports tldextract.
"""

from __future__ import annotations

import bisect
import importlib.abc
import os
import re
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Literal

from assistant.checks import Finding, Policy
from assistant.checks.pii_patterns import card_ok, iban_ok, luhn_ok, negative, own_pii, own_secrets, phones, ssn_ok

__all__ = [
    "PolicyOutcome",
    "apply_policy",
    "card_ok",
    "find_pii",
    "iban_ok",
    "luhn_ok",
    "placeholder",
    "redact",
    "ssn_ok",
]

SECRET_TYPES = frozenset({"api_key", "token", "password", "private_key"})
PII_TYPES = ("email", "phone", "card", "iban", "ssn", "national_id", "ip", "address")
Action = Literal["shown", "masked", "warned"]

# -- presidio: which recognizers, and what their entities are called here -------------------------------------------

# (module under presidio_analyzer.predefined_recognizers, class, our type). National ids are the ones with a
# checksum or a shape distinctive enough not to fire on order numbers; weaker ones need a context word (below).
_RECOGNIZERS = (
    ("generic.email_recognizer", "EmailRecognizer", "email"),
    ("generic.credit_card_recognizer", "CreditCardRecognizer", "card"),
    ("generic.iban_recognizer", "IbanRecognizer", "iban"),
    ("generic.ip_recognizer", "IpRecognizer", "ip"),
    ("country_specific.us.us_ssn_recognizer", "UsSsnRecognizer", "ssn"),
    ("country_specific.us.us_itin_recognizer", "UsItinRecognizer", "national_id"),
    ("country_specific.uk.uk_nino_recognizer", "UkNinoRecognizer", "national_id"),
    ("country_specific.uk.uk_nhs_recognizer", "NhsRecognizer", "national_id"),
    ("country_specific.spain.es_nif_recognizer", "EsNifRecognizer", "national_id"),
    ("country_specific.spain.es_nie_recognizer", "EsNieRecognizer", "national_id"),
    ("country_specific.italy.it_fiscal_code_recognizer", "ItFiscalCodeRecognizer", "national_id"),
    ("country_specific.poland.pl_pesel_recognizer", "PlPeselRecognizer", "national_id"),
    (
        "country_specific.finland.fi_personal_identity_code_recognizer",
        "FiPersonalIdentityCodeRecognizer",
        "national_id",
    ),
    ("country_specific.sweden.se_personnummer_recognizer", "SePersonnummerRecognizer", "national_id"),
    ("country_specific.india.in_aadhaar_recognizer", "InAadhaarRecognizer", "national_id"),
    ("country_specific.india.in_pan_recognizer", "InPanRecognizer", "national_id"),
    ("country_specific.singapore.sg_fin_recognizer", "SgFinRecognizer", "national_id"),
    ("country_specific.australia.au_tfn_recognizer", "AuTfnRecognizer", "national_id"),
    ("country_specific.australia.au_medicare_recognizer", "AuMedicareRecognizer", "national_id"),
    ("country_specific.canada.ca_sin_recognizer", "CaSinRecognizer", "national_id"),
    ("country_specific.germany.de_tax_id_recognizer", "DeTaxIdRecognizer", "national_id"),
    ("country_specific.korea.kr_rrn_recognizer", "KrRrnRecognizer", "national_id"),
    ("country_specific.turkey.tr_national_id_recognizer", "TrNationalIdRecognizer", "national_id"),
    ("country_specific.south_africa.za_id_number_recognizer", "ZaIdNumberRecognizer", "national_id"),
)
_MIN_SCORE = 0.5  # presidio's own "medium"; below it a match needs one of the recognizer's context words nearby
_WEAKEST = 0.1  # presidio patterns scored below this are dropped
_CONTEXT_WINDOW = 48  # characters before a match searched for a context word ("SSN", "NINO", "Steuer-ID")

# detect-secrets plugins (no entropy plugins; IP addresses are found above) and what their findings are called here
_DS_TYPES = {
    "AWS Access Key": "api_key",
    "Artifactory Credentials": "token",
    "Azure Storage Account access key": "api_key",
    "Basic Auth Credentials": "password",
    "Cloudant Credentials": "password",
    "Discord Bot Token": "token",
    "GitHub Token": "token",
    "GitLab Token": "token",
    "IBM Cloud IAM Key": "api_key",
    "IBM COS HMAC Credentials": "api_key",
    "JSON Web Token": "token",
    "Secret Keyword": "password",
    "Mailchimp Access Key": "api_key",
    "NPM tokens": "token",
    "OpenAI Token": "api_key",
    "Private Key": "private_key",
    "PyPI Token": "token",
    "SendGrid API Key": "api_key",
    "Slack Token": "token",
    "SoftLayer Credentials": "api_key",
    "Square OAuth Secret": "api_key",
    "Stripe Access Key": "api_key",
    "Telegram Bot Token": "token",
    "Twilio API Key": "api_key",
}
_DS_PLUGINS = (
    "AWSKeyDetector ArtifactoryDetector AzureStorageKeyDetector BasicAuthDetector CloudantDetector "
    "DiscordBotTokenDetector GitHubTokenDetector GitLabTokenDetector IbmCloudIamDetector IbmCosHmacDetector "
    "JwtTokenDetector KeywordDetector MailchimpDetector NpmDetector OpenAIDetector PrivateKeyDetector "
    "PypiTokenDetector SendGridDetector SlackDetector SoftlayerDetector SquareOAuthDetector StripeDetector "
    "TelegramBotTokenDetector TwilioKeyDetector"
).split()
_DS_PLUGIN_NAMES = frozenset(_DS_PLUGINS)


@dataclass(slots=True)
class _Engine:
    recognizers: list[tuple[Any, str]]
    contexts: list[tuple[str, ...]]
    ds_lock: threading.Lock = field(default_factory=threading.Lock)  # detect-secrets keeps global settings


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def _load() -> _Engine:
    """presidio's recognizers and detect-secrets, imported on first use and kept (thread-safe, once)."""
    global _engine
    if _engine is not None:
        return _engine
    with _engine_lock:
        if _engine is None:
            # tldextract reads this at import; empty means its bundled snapshot, never a download
            os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
            import importlib

            recognizers, contexts = [], []
            guard = _NoTorchForPresidio()
            sys.meta_path.insert(0, guard)
            try:
                classes = [
                    getattr(importlib.import_module(f"presidio_analyzer.predefined_recognizers.{module}"), name)
                    for module, name, _ in _RECOGNIZERS
                ]
            finally:
                sys.meta_path.remove(guard)
            for cls, (_, _, kind) in zip(classes, _RECOGNIZERS, strict=True):
                recognizer = cls()
                # the "very weak" patterns add little beside a context word, and some scan a line once per
                # position (PAN (Low)'s ``(?=.*?...)``): quadratic on a long reply
                recognizer.patterns = [p for p in recognizer.patterns if p.score >= _WEAKEST and "(?=.*" not in p.regex]
                if kind == "email":
                    # the stock check calls tldextract (network, a cache file in ~/.cache); a TLD is letters
                    recognizer.validate_result = _email_ok
                recognizers.append((recognizer, kind))
                contexts.append(tuple(w.casefold() for w in (recognizer.context or [])))
            import detect_secrets.core.scan  # noqa: F401  (imported here so the first scan is not slower)

            _engine = _Engine(recognizers, contexts)
    return _engine


class _NoTorchForPresidio(importlib.abc.MetaPathFinder):
    """Refuses ``transformers`` and ``torch`` to imports made from presidio, spaCy or thinc (on this thread's stack
    only), while presidio is imported: its package imports its transformers NLP engine, which is optional there and
    unused here, and that pulled in torch (2.5 s, hundreds of MB, a /tmp/torchinductor_* directory). Anyone else's
    import of them goes on as usual; a refused import is not cached, so a later one works."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name.partition(".")[0] in ("transformers", "torch"):
            frame: FrameType | None = sys._getframe(1)
            while frame is not None:
                if str(frame.f_globals.get("__name__", "")).startswith(("presidio_analyzer", "spacy", "thinc")):
                    raise ModuleNotFoundError(f"{name} is not needed by the privacy checker", name=name)
                frame = frame.f_back
        return None


def _email_ok(value: str) -> bool:
    tld = value.rsplit(".", 1)[-1]
    return tld.isalpha() and 2 <= len(tld) <= 24 and value.count("@") == 1


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-./+=~]")
_TOKEN_START = re.compile(r"[A-Za-z0-9_-]")  # never back over "KEY=" or "https://"


def _ds_secrets(engine: _Engine, text: str) -> Iterable[tuple[int, int, str]]:
    """detect-secrets, line by line; it gives the value without its place, so the value is found in its line and
    widened to the whole token (its GitHub plugin reports only "ghp", its JWT plugin drops the signature)."""
    from detect_secrets.core.scan import scan_line

    found = []
    with engine.ds_lock:
        _ds_configure()
        offset = 0
        for line in text.splitlines(keepends=True):
            if len(line) > 3:
                for secret in scan_line(line[:4000]):
                    kind = _DS_TYPES.get(secret.type, "token")
                    value = secret.secret_value or ""
                    at = line.find(value) if value else -1
                    if at < 0:
                        continue
                    start, end = at, at + len(value)
                    if kind != "private_key":
                        while start > 0 and _TOKEN_START.match(line[start - 1]) and kind != "password":
                            start -= 1
                        while end < len(line) and _TOKEN_CHARS.match(line[end]) and kind != "password":
                            end += 1
                        while end > at + len(value) and line[end - 1] in ".=/":
                            end -= 1  # the sentence's full stop, not the token's
                    found.append((offset + start, offset + end, kind))
            offset += len(line)
    return found


def _ds_configure() -> None:
    """Select the plugins in detect-secrets' global settings, once per process rather than once per text (its
    transient_settings cost more than the scan: it re-imports every filter's module on the way in and out, and
    it leaves the plugins it added in place anyway); again only if something else changed them since."""
    from detect_secrets.settings import cache_bust, configure_settings_from_baseline, get_settings

    if set(get_settings().plugins) != _DS_PLUGIN_NAMES:
        get_settings().clear()
        cache_bust()
        configure_settings_from_baseline({"plugins_used": [{"name": n} for n in _DS_PLUGINS]})


# -- find, merge, redact ---------------------------------------------------------------------------------------------


def _presidio(engine: _Engine, text: str) -> Iterable[tuple[int, int, str]]:
    lowered = None
    for (recognizer, kind), context in zip(engine.recognizers, engine.contexts, strict=True):
        for result in recognizer.analyze(text, recognizer.supported_entities):
            if result.score < _MIN_SCORE:
                lowered = lowered if lowered is not None else text.casefold()
                before = lowered[max(0, result.start - _CONTEXT_WINDOW) : result.start]
                if not any(re.search(rf"\b{re.escape(word)}\b", before) for word in context):
                    continue
            yield result.start, result.end, kind


_baseline_phone: list[Any] = []
_BASELINE_SCORE = 0.4


def raw_presidio(text: str) -> list[Finding]:
    """presidio's pattern recognizers alone, as they come (the benchmark's baseline): its phone recognizer added,
    its scores at 0.4 or above (the phone recognizer's own score); no validators of ours, no context rule, no
    addresses or secrets of ours."""
    engine = _load()
    if not _baseline_phone:
        from presidio_analyzer.predefined_recognizers.generic.phone_recognizer import PhoneRecognizer

        _baseline_phone.append(PhoneRecognizer())
    pairs = [*engine.recognizers, (_baseline_phone[0], "phone")]
    found = [
        (r.start, r.end, kind)
        for recognizer, kind in pairs
        for r in recognizer.analyze(text, recognizer.supported_entities)
        if r.score >= _BASELINE_SCORE
    ]
    return _merge(text, found)


_VALIDATORS = {"card": card_ok, "iban": iban_ok, "ssn": ssn_ok}
# When two findings overlap, the more specific one wins (a card number is not also a phone number).
_PRIORITY = {
    k: i
    for i, k in enumerate(
        (
            "private_key",
            "api_key",
            "token",
            "password",
            "email",
            "iban",
            "card",
            "ssn",
            "national_id",
            "ip",
            "phone",
            "address",
        )
    )
}


def find_pii(text: str) -> list[Finding]:
    """Every piece of personal data and every secret in ``text``, sorted by position, never overlapping."""
    if not text or not text.strip():
        return []
    engine = _load()
    candidates: list[tuple[int, int, str]] = []
    for start, end, kind in [*_presidio(engine, text), *phones(text), *own_pii(text)]:
        value = text[start:end]
        if (check := _VALIDATORS.get(kind)) is not None and not check(value):
            continue
        if not negative(text, start, end, kind):
            candidates.append((start, end, kind))
    candidates += own_secrets(text)
    candidates += _ds_secrets(engine, text)
    return _merge(text, candidates)


def _merge(text: str, candidates: list[tuple[int, int, str]]) -> list[Finding]:
    # longest and most specific first; a later candidate that overlaps a kept one is dropped
    def rank(c: tuple[int, int, str]) -> tuple[int, int, int]:
        # a number written with its country code ("+1 201-555-...") is a phone number before anything else
        kind = "email" if c[2] == "phone" and text[c[0]] == "+" else c[2]
        return _PRIORITY.get(kind, 99), -(c[1] - c[0]), c[0]

    ordered = sorted(set(candidates), key=rank)
    starts: list[int] = []  # kept spans, sorted by start (they never overlap, so their ends are sorted too)
    ends: list[int] = []
    kinds: dict[int, str] = {}
    for start, end, kind in ordered:
        if end <= start:
            continue
        i = bisect.bisect_right(starts, start)
        if (i and ends[i - 1] > start) or (i < len(starts) and starts[i] < end):
            continue
        starts.insert(i, start)
        ends.insert(i, end)
        kinds[start] = kind
    return [
        Finding(kinds[s], s, e, text[s:e], secret=kinds[s] in SECRET_TYPES) for s, e in zip(starts, ends, strict=True)
    ]


def placeholder(finding: Finding) -> str:
    return "[secret]" if finding.secret else f"[{finding.type}]"


def redact(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with each finding replaced by its placeholder (``[email]``, ``[card]``, ``[secret]``, ...)."""
    out, at = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < at:
            continue  # overlapping findings (not from find_pii): the first one already covers it
        out += [text[at : f.start], placeholder(f)]
        at = f.end
    out.append(text[at:])
    return "".join(out)


# -- policy ----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class PolicyOutcome:
    """What a reply may show: ``text`` (withheld: empty when ``blocked``), one action per finding (in the order of
    ``findings``: "shown" for the user's own data, "masked", or "warned" when only flagged), and whether the whole
    reply was withheld."""

    text: str
    actions: list[Action]
    blocked: bool = False
    findings: list[Finding] = field(default_factory=list)

    def items(self) -> list[dict[str, Any]]:
        """For ``chat --json``: ``{"type", "start", "end", "action"}`` per finding (offsets into the checked text)."""
        return [
            {"type": f.type, "start": f.start, "end": f.end, "action": a}
            for f, a in zip(self.findings, self.actions, strict=True)
        ]


def normalise(kind: str, value: str) -> str:
    """The form two mentions of one value share: digits only for numbers, no spaces or case for the rest."""
    if kind in ("card", "phone", "ssn"):
        digits = re.sub(r"\D", "", value)
        return digits[-10:] if kind == "phone" else digits  # +44 20 ... and 020 ... are one number
    if kind in ("iban", "national_id"):
        return re.sub(r"[\s.-]", "", value).upper()
    return re.sub(r"\s+", " ", value).strip().casefold()


_NUMBER_RUN = re.compile(r"[+(]?\d[\d\s().+/-]*\d")


class _Typed:
    """What the user typed, normalised once per reply: numbers by their digits (each run of digits and separators
    on its own, so two numbers side by side never make a third), everything else by case and spacing."""

    def __init__(self, user_inputs: Iterable[str]) -> None:
        inputs = list(user_inputs)
        self.digit_runs = [re.sub(r"\D", "", m.group(0)) for said in inputs for m in _NUMBER_RUN.finditer(said)]
        self.compact = [re.sub(r"[\s.-]", "", said).upper() for said in inputs]
        self.words = [re.sub(r"\s+", " ", said).casefold() for said in inputs]

    def has(self, finding: Finding) -> bool:
        wanted = normalise(finding.type, finding.text)
        if not wanted:
            return False
        if finding.type in ("card", "phone", "ssn"):
            return any(wanted in run for run in self.digit_runs)
        if finding.type in ("iban", "national_id"):
            return any(wanted in said for said in self.compact)
        edge = re.compile(rf"(?<![\w.@+-]){re.escape(wanted)}(?![\w@-]|\.\w)")
        return any(edge.search(said) for said in self.words)


def typed_by_user(finding: Finding, user_inputs: Iterable[str]) -> bool:
    """Whether the user typed this value in the conversation (compared normalised: "4111 1111 ..." is
    "4111-1111-...", "+44 20 7946 0958" is "020 7946 0958", "Ana@Example.com" is "ana@example.com")."""
    return _Typed(user_inputs).has(finding)


def apply_policy(
    text: str, findings: Sequence[Finding], user_inputs: Iterable[str], policy: Policy = "redact"
) -> PolicyOutcome:
    """Apply a privacy policy to a reply: "off" shows everything; otherwise what the user typed in this conversation
    is shown back, secrets are always masked, and anything else sensitive is masked ("redact"), only flagged
    ("warn"), or withholds the whole reply ("block")."""
    findings = sorted(findings, key=lambda f: f.start)
    if policy == "off":
        return PolicyOutcome(text, ["shown"] * len(findings), False, list(findings))
    typed = _Typed(user_inputs)
    actions: list[Action] = []
    for f in findings:
        if f.secret:
            actions.append("masked")
        elif typed.has(f):
            actions.append("shown")
        elif policy == "warn":
            actions.append("warned")
        else:
            actions.append("masked")
    leaked = any(a == "masked" and not f.secret for f, a in zip(findings, actions, strict=True))
    masked_text = redact(text, [f for f, a in zip(findings, actions, strict=True) if a == "masked"])
    if policy == "block" and leaked:
        return PolicyOutcome("", actions, True, list(findings))
    return PolicyOutcome(masked_text, actions, False, list(findings))
