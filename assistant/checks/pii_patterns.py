"""The patterns and validators behind ``assistant.checks.privacy`` (kept apart so each module stays small): checksums
(Luhn, IBAN mod 97, SSN rules), hard negatives, phone numbers through libphonenumber, street addresses, and the
secret shapes, assignments and connection strings found without detect-secrets.

Every finder yields ``(start, end, type)`` candidates; ``privacy.find_pii`` validates, merges and sorts them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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
    r"\b(?:order|invoice|tracking|ticket|reference|ref|case|build|version|ver|v|release|commit|sha|hash|item|sku|"
    r"part|model|serial|batch|lot|isbn|issue|pr|bug)\s*(?:no\.?|number|#|id)?\s*[:#]?(?:\s+(?:is|was))?\s*$",
    re.IGNORECASE,
)
_DATE = re.compile(r"\d{1,2}[./]\d{1,2}[./]\d{2,4}|\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}-\d{1,2}-\d{4}")


def negative(text: str, start: int, end: int, kind: str) -> bool:
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
    if kind == "ip" and re.search(
        r"\b(?:version|ver|v|release|build|patch|update|firmware)\s*$", before, re.IGNORECASE
    ):
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


def phones(text: str) -> Iterable[tuple[int, int, str]]:
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


def own_secrets(text: str) -> Iterable[tuple[int, int, str]]:
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


def own_pii(text: str) -> Iterable[tuple[int, int, str]]:
    for m in _ADDRESS.finditer(text):
        yield m.start(), m.end(), "address"
    # presidio's card pattern misses some networks' ranges (Mastercard's 2-series); card_ok checks these after
    for m in re.finditer(r"(?<![\d+])(?:\d[ -]?){12,18}\d(?!\d)", text):
        yield m.start(), m.end(), "card"
    # 123-45-6789 and "SSN 123 45 6789": presidio's strong pattern needs a separator, and its weak ones a context
    for m in re.finditer(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])", text):
        yield m.start(), m.end(), "ssn"
