"""Secrets and credentials in a fact: what they are, where they are, and what the fact is about.

A fact goes into the system prompt, and a small model repeats what is in its prompt: "my wifi password is hunter2"
was said back in an unrelated answer. So a fact that holds a secret is kept out of the prompt unless the question
shares its topic (``keep_in_prompt``), and the user is told when saving one (``save_warning``).

What counts (each rule is a pattern with a check, never a guess from randomness alone; ordinary prose has plenty
of odd-looking words):

* a value after a credential word: "password/passcode/passphrase/PIN/secret/API key/token/... is|:|= VALUE"
  ("my wifi password is hunter2", "the door code is 4821", "PIN: 0000"); words that describe a password
  ("is strong", "is the same everywhere") are not values;
* well-known key and token shapes (AWS, GitHub, OpenAI, Slack, Google, Stripe, Hugging Face, JWT, Bearer) and
  PEM/PGP private-key blocks;
* payment card numbers (13-19 digits, a card network's prefix, Luhn-valid), IBANs (mod-97 valid);
* government ids: US social security numbers (123-45-6789, or nine digits after "SSN"), and a value with digits
  after "passport number", "national insurance number", "driver's licence number", "tax id", ...

Not secrets, on purpose: phone numbers, email and street addresses, birthdays, names, ages. They are personal, but
recalling them is what a personal assistant is for, and none of them lets someone into an account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The checksums (Luhn, IBAN mod 97) are the reply checker's: one implementation of each.
from assistant.checks.pii_patterns import card_ok
from assistant.checks.pii_patterns import iban_ok as iban_ok
from assistant.checks.pii_patterns import luhn_ok as luhn_ok

# -- findings -----------------------------------------------------------------------------------------------------

KIND_LABELS = {
    "password": "a password",
    "pin": "a PIN or passcode",
    "api_key": "an API key or token",
    "private_key": "a private key",
    "card_number": "a payment card number",
    "iban": "a bank account number (IBAN)",
    "government_id": "a government id number",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One secret in a text: its kind (a key of ``KIND_LABELS``) and where it is (``text[start:end]``)."""

    kind: str
    start: int
    end: int

    def value(self, text: str) -> str:
        return text[self.start : self.end]


# -- keyword + value ----------------------------------------------------------------------------------------------

_PASSWORD_WORDS = r"pass\s?words?|passwd|pwd|pass\s?phrases?|credentials?|wifi\s+key|wpa2?\s+key|network\s+key"
_PIN_WORDS = (
    r"pins?(?:\s+(?:code|number))?|pass\s?codes?|security\s+codes?|cvv2?|cvc|unlock\s+codes?|"
    r"(?:door|gate|alarm|garage|safe|lock|locker|entry|access|building|keypad|bike\s+lock)\s+(?:codes?|combinations?)|"
    r"combination"
)
_KEY_WORDS = (
    r"api[\s_-]?keys?|access[\s_-]?keys?|secret(?:[\s_-]?(?:access[\s_-]?)?keys?)?|client[\s_-]?secrets?|"
    r"(?:auth(?:entication)?|access|bearer|api|refresh|session)[\s_-]?tokens?|tokens?|"
    r"recovery\s+(?:codes?|keys?|phrases?)|seed\s+phrases?|mnemonic(?:\s+phrase)?"
)
_ID_WORDS = (
    r"ssn|social\s+security(?:\s+(?:number|no\.?|#))?|passport(?:\s+(?:number|no\.?|#))?|"
    r"national\s+(?:insurance|id(?:entity)?)(?:\s+(?:number|no\.?|#|card\s+number))?|"
    r"driver'?s?\s+licen[cs]e(?:\s+(?:number|no\.?|#))?|tax\s+(?:id|number|identification\s+number)|"
    r"(?:bsn|sin|tfn|nino|personnummer|steuer-?id)(?:\s+(?:number|no\.?))?"
)
_GROUPS = {"password": _PASSWORD_WORDS, "pin": _PIN_WORDS, "api_key": _KEY_WORDS, "government_id": _ID_WORDS}

# "the password for my bank account is", "PIN to the garage:", "wifi password = "
_QUALIFIER = r"(?:\s+(?:for|to|of|on|at)\s+(?:(?:my|the|our|your|his|her|their|a)\s+)?[\w'’.-]+(?:\s+[\w'’.-]+){0,2}?)?"
_COPULA = r"\s*(?:(?:is|was|are|=|:|->|reads|is\s+set\s+to|is\s+still|has\s+been\s+changed\s+to|changed\s+to)\s*)"
_KEYWORD_VALUE = {
    kind: re.compile(rf"(?<![\w-])(?:{words}){_QUALIFIER}{_COPULA}(?P<rest>.*)", re.IGNORECASE | re.DOTALL)
    for kind, words in _GROUPS.items()
}

# Words that describe a secret instead of being one: "my password is strong", "the PIN is on the card".
_DESCRIBING = frozenset(
    """a an the my your his her our their its this that these those same different long short strong weak secure
    safe unsafe easy hard simple complex complicated expired wrong right correct incorrect new old changed reset
    saved stored written kept in on at with without for from not no none never too very still also now required
    needed mandatory optional case-sensitive forgotten lost unknown secret private hidden encrypted hashed something
    anything nothing somewhere what which who why how when where there here set being been easy-to-remember""".split()
)
_SPACELESS_VALUE = re.compile(r"[^\s\"'“”‘’]+")
_QUOTED_VALUE = re.compile(r"[\"'“‘]([^\"'“”‘’\n]{3,200})[\"'”’]")


def _value_after(kind: str, rest: str, offset: int) -> Finding | None:
    """The secret at the start of ``rest`` (what follows "password is"), or None when that is a description."""
    rest_stripped = rest.lstrip(" \t")
    start = offset + len(rest) - len(rest_stripped)
    if quoted := _QUOTED_VALUE.match(rest_stripped):  # 'correct horse battery staple': the whole quote
        return Finding(kind, start + 1, start + 1 + len(quoted.group(1)))
    rest_stripped = rest_stripped.lstrip("\"'“‘")
    start = offset + len(rest) - len(rest_stripped)
    match = _SPACELESS_VALUE.match(rest_stripped)
    if not match:
        return None
    value = match.group(0).rstrip(".,;!?)")
    if not value or value.casefold() in _DESCRIBING:
        return None
    if kind == "pin" and sum(ch.isdigit() for ch in value) < 3:
        return None  # a PIN or door code has digits; "the combination is tricky" has none
    if kind == "api_key" and (len(value) < 8 or not re.search(r"\d", value) or not re.search(r"[A-Za-z]", value)):
        return None  # "my token is expired", "the secret is out": a key is long and mixes letters and digits
    if kind == "government_id" and not re.search(r"\d", value):
        return None
    if kind == "password" and len(value) < 3:
        return None
    end = start + len(value)
    if kind == "pin":  # "1234 5678": a spaced code continues past the first group
        spaced = re.match(r"[0-9]+(?:[ -][0-9]+)*", rest_stripped)
        if spaced and spaced.group(0).startswith(value):
            end = start + len(spaced.group(0))
    return Finding(kind, start, end)


def _keyword_findings(text: str) -> list[Finding]:
    found = []
    for kind, pattern in _KEYWORD_VALUE.items():
        for match in pattern.finditer(text):
            finding = _value_after(kind, match.group("rest"), match.start("rest"))
            if finding is not None:
                found.append(finding)
    return found


# -- shapes that need no keyword ------------------------------------------------------------------------------------

_SHAPES = {
    "private_key": re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?"
        r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
        re.DOTALL,
    ),
    "api_key": re.compile(
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key id
        r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}"  # GitHub
        r"|\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic
        r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
        r"|\bAIza[0-9A-Za-z_-]{35}\b"  # Google
        r"|\b[rsp]k_(?:live|test)_[0-9A-Za-z]{16,}"  # Stripe
        r"|\bhf_[A-Za-z0-9]{30,}"  # Hugging Face
        r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
        r"|(?<=Bearer )[A-Za-z0-9._~+/-]{20,}=*"
    ),
    # 123-45-6789 (never 000, 666 or 9xx first, 00 middle or 0000 last)
    "government_id": re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"),
}

_CARD = re.compile(r"(?<![\d+])(?:\d[ -]?){12,18}\d(?![\d])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")


def _shape_findings(text: str) -> list[Finding]:
    found = [Finding(kind, m.start(), m.end()) for kind, pattern in _SHAPES.items() for m in pattern.finditer(text)]
    for match in _CARD.finditer(text):
        if card_ok(match.group(0)):
            found.append(Finding("card_number", match.start(), match.end()))
    for match in _IBAN.finditer(text):
        value = match.group(0).rstrip()
        # the regex may run into a following word in capitals: try the longest valid prefix
        for end in range(len(value), 14, -1):
            if iban_ok(value[:end]):
                found.append(Finding("iban", match.start(), match.start() + len(value[:end].rstrip())))
                break
    return found


def find_sensitive(text: str) -> list[Finding]:
    """Every secret or credential in ``text``, in order; overlapping findings are merged into the first."""
    findings = sorted(_keyword_findings(text) + _shape_findings(text), key=lambda f: (f.start, -f.end))
    merged: list[Finding] = []
    for finding in findings:
        if merged and finding.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Finding(last.kind, last.start, max(last.end, finding.end))
        else:
            merged.append(finding)
    return merged


def is_sensitive(text: str) -> bool:
    return bool(find_sensitive(text))


# -- what a fact is about -------------------------------------------------------------------------------------------

_STOPWORDS = frozenset(
    """a an the and or but if then so of to in on at by for with from into onto about as is are was were be been
    being am do does did done have has had having i me my mine myself you your yours we us our ours he him his she
    her hers they them their theirs it its this that these those there here what which who whom whose when where why
    how can could would should will shall may might must not no yes please tell say said know remember remind again
    also just only very really any some all every each one ones thing things something anything use used using get
    got give gave set like want need let lets it's i'm what's whats new old same""".split()
)
_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")


def _normal(word: str) -> str:
    word = word.casefold().replace("’", "'")
    word = word.removesuffix("'s").replace("-", "").replace("'", "")
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]  # "passwords" asks about "password"
    return word


def topic_words(text: str) -> set[str]:
    """What a text is about: its content words, normalised ("Wi-Fi" -> "wifi", "passwords" -> "password"),
    without the secrets themselves."""
    spans = [(f.start, f.end) for f in find_sensitive(text)]
    words = set()
    for match in _WORD.finditer(text):
        if any(start <= match.start() < end for start, end in spans):
            continue
        word = _normal(match.group(0))
        if len(word) > 1 and word not in _STOPWORDS and not word.isdigit():
            words.add(word)
    return words


def about(question: str, text: str) -> bool:
    """Whether ``question`` shares a topic word with ``text`` ("what is my wifi password?" and the wifi fact)."""
    return bool(topic_words(question) & topic_words(text))


def keep_in_prompt(text: str, question: str | None) -> bool:
    """A fact or snippet may go into the prompt: it holds no secret, or the question is about it."""
    if not is_sensitive(text):
        return True
    return question is not None and about(question, text)


def describe(findings: list[Finding]) -> str:
    """"a password and a PIN or passcode" for the kinds found."""
    labels = list(dict.fromkeys(KIND_LABELS.get(f.kind, "a secret") for f in findings))
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def save_warning(text: str, fact_id: int | None = None) -> str | None:
    """What to tell the user when a fact they save looks like a secret (None when it does not); never the secret."""
    findings = find_sensitive(text)
    if not findings:
        return None
    return (
        f"This fact looks like it holds {describe(findings)}. It is stored unencrypted in your private data dir and "
        "goes into a prompt only when you ask about it; "
        f"`assistant memory forget {fact_id if fact_id is not None else 'ID'}` removes it."
    )
