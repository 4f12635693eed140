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
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from assistant.checks import Finding, Policy

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
            for module, name, kind in _RECOGNIZERS:
                cls = getattr(importlib.import_module(f"presidio_analyzer.predefined_recognizers.{module}"), name)
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


def _email_ok(value: str) -> bool:
    tld = value.rsplit(".", 1)[-1]
    return tld.isalpha() and 2 <= len(tld) <= 24 and value.count("@") == 1


# -- validators and hard negatives ----------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """ISO 13616: the first four characters moved to the end, letters as numbers, mod 97 must be 1."""
    iban = re.sub(r"[\s-]", "", candidate).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban):
        return False
    return int("".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])) % 97 == 1


def ssn_ok(value: str) -> bool:
    """The SSA never issues area 000, 666 or 9xx, group 00 or serial 0000; nor the advertised 078-05-1120."""
    digits = re.sub(r"\D", "", value)
    if len(digits) != 9 or digits == "078051120" or len(set(digits)) == 1:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[0689]|6(?:011|5|4[4-9]|2)|35")


def card_ok(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn_ok(digits) and len(set(digits)) > 1


# Words just before a number that say it is not personal: "order 4111...", "invoice no. ...", "version 10.0.0.1"
_NOT_PII_BEFORE = re.compile(
    r"(?:order|invoice|tracking|ticket|reference|ref|case|build|version|ver|v|release|commit|sha|hash|item|sku|"
    r"part|model|serial|batch|lot|isbn|issue|pr|bug)\s*(?:no\.?|number|#|id)?\s*[:#]?(?:\s+(?:is|was))?\s*$",
    re.IGNORECASE,
)
_DATE = re.compile(r"\d{1,2}[./]\d{1,2}[./]\d{2,4}|\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}-\d{1,2}-\d{4}")


def _negative(text: str, start: int, end: int, kind: str) -> bool:
    """A match that a hard negative explains better (an order number, a version string, part of a hash)."""
    before = text[max(0, start - 24) : start]
    if kind in ("card", "phone", "ssn", "national_id", "ip") and _NOT_PII_BEFORE.search(before):
        return True
    # inside a longer run of hex or word characters: a hash, a UUID, an identifier
    if (start > 1 and text[start - 1] == "-" and text[start - 2].isalnum()) or (
        end + 1 < len(text) and text[end] == "-" and text[end + 1].isalnum()
    ):
        return kind not in ("email", "address")
    if (start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_")) or (
        end < len(text) and (text[end].isalnum() or text[end] == "_")
    ):
        return kind not in ("email", "address")
    if kind == "ip" and (text[start - 1 : start] == "." or re.match(r"\.\d", text[end : end + 2])):
        return True  # 1.2.3.4.5: a longer dotted number (a version, an OID), not an address
    if kind == "ip" and re.search(r"(?:version|ver|v|release|build|patch|update|firmware)\s*$", before, re.IGNORECASE):
        return True
    if kind in ("card", "ssn", "national_id") and start > 0 and text[start - 1] == "+":
        return True  # +393123456976 is a phone number, whatever else its digits would pass for
    if kind in ("phone", "ssn", "national_id") and _DATE.fullmatch(text[start:end]):
        return True
    return False


# -- phones: libphonenumber's matcher, valid numbers only ------------------------------------------------------------

_PHONE_REGIONS = ("US", "GB", "DE", "FR")
_PHONE_CONTEXT = re.compile(
    r"(?:phone|tel|call|mobile|cell|ring|text|whatsapp|fax|number|reach|dial)\W{0,12}$", re.IGNORECASE
)


def _phones(text: str) -> Iterable[tuple[int, int, str]]:
    import phonenumbers

    seen: set[tuple[int, int]] = set()
    if sum(ch.isdigit() for ch in text) < 6:
        return
    for region in _PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            span = (match.start, match.end)
            if span in seen:
                continue
            seen.add(span)
            raw = match.raw_string
            # a bare digit run in someone else's region is an order number more often than a phone number
            international = raw.startswith(("+", "00"))
            formatted = bool(re.search(r"[\s().-]", raw))
            national = formatted and raw.startswith(("0", "("))
            if (
                international
                or national
                or (formatted and region == "US")
                or _PHONE_CONTEXT.search(text[max(0, span[0] - 24) : span[0]])
            ):
                yield match.start, match.end, "phone"


# -- street addresses ------------------------------------------------------------------------------------------------

_STREET_EN = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|square|sq|terrace|way|"
    r"parkway|pkwy|highway|hwy|close|crescent|row|gardens"
)
_ADDRESS = re.compile(
    # 221B Baker Street, 1600 Pennsylvania Avenue NW, 42 Elm St., Apt 5
    rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][\w'’-]*\.?\s+){{1,3}}(?i:{_STREET_EN})\b\.?(?:\s+(?:NW|NE|SW|SE|N|S|E|W)\b)?"
    r"(?:,?\s+(?:apt|apartment|suite|ste|unit|flat)\.?\s*#?\w+)?"
    # Hauptstraße 5, Musterstr. 12a, Kaiserweg 3, Am Markt 7 (German, Dutch, Scandinavian: number after the name)
    r"|\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|weg|allee|gasse|platz|ring|damm|straat|gracht|laan|plein|kade|"
    r"gatan|gata|vej|veien)"
    r"\s+\d{1,4}[a-z]?\b"
    # 12 rue de la Paix, 5 avenue des Champs-Élysées, 3 via Roma, 10 calle Mayor
    r"|\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|boulevard|bd|place|allée|impasse|chemin|quai|via|viale|"
    r"piazza|calle|avenida|rua|plaza)\s+(?:(?:de|du|des|della|del|di|la|le|les|l’|l'|d'|d’)\s*)*"
    r"[A-ZÀ-Ý][\wÀ-ÿ'’-]*(?:\s+[A-ZÀ-Ý][\wÀ-ÿ'’-]*){0,2}"
    # Via Roma 3, Calle Mayor 10, Rua Augusta 24: the name first, the number after
    r"|\b(?:Via|Viale|Piazza|Corso|Calle|Avenida|Rua|Carrer|Plaza|Paseo)\s+(?:(?:de|del|della|di|la|do|da)\s+)*"
    r"[A-ZÀ-Ý][\wÀ-ÿ'’-]*(?:\s+[A-ZÀ-Ý][\wÀ-ÿ'’-]*){0,2},?\s+\d{1,4}[a-z]?\b",
)

# -- secrets of our own: shapes, assignments, connection strings, PEM blocks -----------------------------------------

_SECRET_SHAPES = (
    (
        "private_key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?"
            r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.DOTALL,
        ),
    ),
    (
        "api_key",
        re.compile(
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bsk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}|\bAIza[0-9A-Za-z_-]{35}\b"
            r"|\b[rsp]k_(?:live|test)_[0-9A-Za-z]{16,}|\bSG\.[\w-]{16,}\.[\w-]{16,}"
        ),
    ),
    (
        "token",
        re.compile(
            r"\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}|\bglpat-[\w-]{20,}|\bxox[abposr]-[A-Za-z0-9-]{10,}"
            r"|\bhf_[A-Za-z0-9]{30,}|\bnpm_[A-Za-z0-9]{36}\b|\bpypi-[\w-]{50,}"
            r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|(?<=Bearer )[A-Za-z0-9._~+/-]{20,}=*"
        ),
    ),
)
# password = "..." / PASSWORD: ... / my password is ... ; secret_key=..., api_key: ...
_ASSIGNED = re.compile(
    r"(?P<key>\b[\w.-]{0,40}?(?:pass(?:word|wd|phrase)?|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|"
    r"access[_-]?token|client[_-]?secret|private[_-]?key|token)[\w.-]{0,40})['\"]?"
    r"(?P<op>\s*(?:=|:=|:|=>|->)\s*|\s+(?:(?:is|was|has\s+been)\s+(?:set|changed|updated)\s+to|is\s+now|changed\s+to|is|was)\s+)"
    r"(?P<q>['\"“‘]?)(?P<value>[^\s'\"“”‘’,;]{4,200})",
    re.IGNORECASE,
)
_CONNECTION = re.compile(r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@]{1,64}:(?P<value>[^\s@/]{3,128})@[\w.-]+", re.IGNORECASE)
_NOT_A_VALUE = frozenset(
    """none null nil true false undefined required optional changeme example placeholder redacted secret password
    strong weak long short correct wrong incorrect expired reset changed updated same different saved stored hidden
    the a an my your not still also now here there""".split()
)


def _value_looks_secret(key: str, value: str, prose: bool = False) -> bool:
    v = value
    if v.casefold() in _NOT_A_VALUE or v.startswith(("$", "{", "<", "%", "os.", "env", "process.", "getenv")):
        return False  # a description, a placeholder, a template or a lookup, not the secret itself
    if re.fullmatch(r"[A-Za-z_][\w.]*\(.*", v) or re.fullmatch(r"[a-z]+(?:_[a-z]+)+", v):
        return False  # a function call or a variable name
    if prose and re.fullmatch(r"[a-z]+", v):
        return False  # "my password is fine": in a sentence a password has a digit, a symbol or a capital
    if "pass" in key.casefold() or "pwd" in key.casefold():
        return len(v) >= 4
    return len(v) >= 8 and bool(re.search(r"\d", v)) and bool(re.search(r"[A-Za-z]", v))


def _own_secrets(text: str) -> Iterable[tuple[int, int, str]]:
    for kind, pattern in _SECRET_SHAPES:
        for m in pattern.finditer(text):
            yield m.start(), m.end(), kind
    for m in _CONNECTION.finditer(text):
        yield m.start("value"), m.end("value"), "password"
    for m in _ASSIGNED.finditer(text):
        key, value = m.group("key"), m.group("value")
        prose = m.group("op").strip()[:1].isalpha()
        if prose and not m.group("q"):  # "... is hunter2." ends a sentence; a quoted value ends at its quote
            value = value.rstrip(".!?)")
        if _value_looks_secret(key, value, prose):
            lowered = key.casefold()
            kind = "password" if re.search(r"pass|pwd", lowered) else "token" if "token" in lowered else "api_key"
            yield m.start("value"), m.start("value") + len(value), kind


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-./+=~]")
_TOKEN_START = re.compile(r"[A-Za-z0-9_-]")  # never back over "KEY=" or "https://"


def _ds_secrets(engine: _Engine, text: str) -> Iterable[tuple[int, int, str]]:
    """detect-secrets, line by line; it gives the value without its place, so the value is found in its line and
    widened to the whole token (its GitHub plugin reports only "ghp", its JWT plugin drops the signature)."""
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import transient_settings

    found = []
    with engine.ds_lock, transient_settings({"plugins_used": [{"name": n} for n in _DS_PLUGINS]}):
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
    for start, end, kind in [*_presidio(engine, text), *_phones(text), *_own_pii(text)]:
        value = text[start:end]
        if (check := _VALIDATORS.get(kind)) is not None and not check(value):
            continue
        if not _negative(text, start, end, kind):
            candidates.append((start, end, kind))
    candidates += _own_secrets(text)
    candidates += _ds_secrets(engine, text)
    return _merge(text, candidates)


def _own_pii(text: str) -> Iterable[tuple[int, int, str]]:
    for m in _ADDRESS.finditer(text):
        yield m.start(), m.end(), "address"
    # presidio's card pattern misses some networks' ranges (Mastercard's 2-series); card_ok checks these after
    for m in re.finditer(r"(?<![\d+])(?:\d[ -]?){12,18}\d(?!\d)", text):
        yield m.start(), m.end(), "card"
    # 123-45-6789 and "SSN 123 45 6789": presidio's strong pattern needs a separator, and its weak ones a context
    for m in re.finditer(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])", text):
        yield m.start(), m.end(), "ssn"


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


def typed_by_user(finding: Finding, user_inputs: Iterable[str]) -> bool:
    """Whether the user typed this value in the conversation (compared normalised: "4111 1111 ..." is
    "4111-1111-...", "Ana@Example.com" is "ana@example.com")."""
    wanted = normalise(finding.type, finding.text)
    if not wanted:
        return False
    for said in user_inputs:
        for other in find_pii(said):
            if other.type == finding.type and normalise(other.type, other.text) == wanted:
                return True
        if finding.type in ("email", "address", "ip") and wanted in normalise(finding.type, said):
            return True
    return False


def apply_policy(
    text: str, findings: Sequence[Finding], user_inputs: Iterable[str], policy: Policy = "redact"
) -> PolicyOutcome:
    """Apply a privacy policy to a reply: "off" shows everything; otherwise what the user typed in this conversation
    is shown back, secrets are always masked, and anything else sensitive is masked ("redact"), only flagged
    ("warn"), or withholds the whole reply ("block")."""
    findings = sorted(findings, key=lambda f: f.start)
    if policy == "off":
        return PolicyOutcome(text, ["shown"] * len(findings), False, list(findings))
    inputs = list(user_inputs)
    actions: list[Action] = []
    for f in findings:
        if f.secret:
            actions.append("masked")
        elif typed_by_user(f, inputs):
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
