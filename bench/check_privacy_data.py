"""The privacy checker's evaluation set, built in code (seeded, so every run sees the same items).

Each item is a text with the spans that must be found, and their types: personal data in realistic sentences and
formats from several countries, secrets in code, config files and prose, and hard negatives (order numbers, dates,
version strings, hashes, UUIDs, prices, ordinary prose) that carry no span at all. Values are generated, never real:
card numbers and IBANs get valid checksums, phone numbers are valid for their country (libphonenumber), national ids
follow their checksum rules.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from dataclasses import dataclass

SEED = 8


@dataclass(frozen=True, slots=True)
class Item:
    text: str
    spans: tuple[tuple[int, int, str], ...]  # (start, end, type), end exclusive
    group: str  # "pii", "secret" or "negative"


def fill(template: str, group: str, **values: tuple[str, str]) -> Item:
    """``template`` with ``{name}`` slots; each value is (text, type) and becomes a labelled span."""
    text, spans, at = "", [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        text += template[at : m.start()]
        value, kind = values[m.group(1)]
        spans.append((len(text), len(text) + len(value), kind))
        text += value
        at = m.end()
    text += template[at:]
    return Item(text, tuple(spans), group)


# -- generators ------------------------------------------------------------------------------------------------------


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        digits = body + check
        total = sum(
            (int(c) * 2 - 9 if int(c) > 4 else int(c) * 2) if i % 2 else int(c) for i, c in enumerate(reversed(digits))
        )
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def card(rng: random.Random) -> str:
    network = rng.choice(["visa", "mc", "mc2", "amex", "discover", "jcb", "diners"])
    prefix, length = {
        "visa": ("4", 16),
        "mc": (str(rng.randint(51, 55)), 16),
        "mc2": (str(rng.randint(2221, 2720)), 16),
        "amex": (rng.choice(["34", "37"]), 15),
        "discover": ("6011", 16),
        "jcb": ("35" + str(rng.randint(28, 89)), 16),
        "diners": ("36", 14),
    }[network]
    digits = luhn_complete(prefix, length, rng)
    style = rng.choice(["space", "dash", "plain"])
    if style == "plain":
        return digits
    sep = " " if style == "space" else "-"
    groups = (
        [digits[:4], digits[4:10], digits[10:]] if length in (14, 15) else [digits[i : i + 4] for i in (0, 4, 8, 12)]
    )
    return sep.join(groups)


_IBAN_BBAN = {  # country: BBAN shape, "n" a digit, "a" an upper-case letter, "c" either
    "DE": "n" * 18,
    "GB": "aaaa" + "n" * 14,
    "FR": "n" * 10 + "c" * 11 + "nn",
    "ES": "n" * 20,
    "IT": "a" + "n" * 10 + "c" * 12,
    "NL": "aaaa" + "n" * 10,
    "BE": "n" * 12,
    "CH": "n" * 5 + "c" * 12,
    "AT": "n" * 16,
    "PL": "n" * 24,
}


def iban(rng: random.Random, country: str) -> str:
    pick = {"n": string.digits, "a": string.ascii_uppercase, "c": string.digits}
    bban = "".join(rng.choice(pick[c]) for c in _IBAN_BBAN[country])
    check = 98 - int("".join(str(int(ch, 36)) for ch in bban + country + "00")) % 97
    value = f"{country}{check:02d}{bban}"
    if rng.random() < 0.6:
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def phone(rng: random.Random, region: str) -> str:
    import phonenumbers

    kind = rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None, region
    for _ in range(200):
        national = phonenumbers.national_significant_number(example)  # Italy's fixed lines keep their 0
        keep = max(3, len(national) - 4)
        candidate = national[:keep] + "".join(rng.choice(string.digits) for _ in range(len(national) - keep))
        number = phonenumbers.parse(f"+{example.country_code}{candidate}")
        if phonenumbers.is_valid_number(number):
            style = rng.choice(
                [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]
                + ([phonenumbers.PhoneNumberFormat.NATIONAL] if region in ("US", "GB", "DE", "FR") else [])
            )
            return phonenumbers.format_number(number, style)
    raise AssertionError(f"no valid number for {region}")


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def nino(rng: random.Random) -> str:
    first = rng.choice("ABCEGHJKLMNOPRSTWXYZ")
    second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    if first + second in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
        first, second = "A", "B"
    digits = "".join(rng.choice(string.digits) for _ in range(6))
    return (
        f"{first}{second}{digits}{rng.choice('ABCD')}"
        if rng.random() < 0.5
        else (f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {rng.choice('ABCD')}")
    )


def nif(rng: random.Random) -> str:
    n = rng.randint(10_000_000, 99_999_999)
    return f"{n}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"


def pesel(rng: random.Random) -> str:
    body = f"{rng.randint(50, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 9999):04d}"
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    return body + str((10 - sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 10) % 10)


def hetu(rng: random.Random) -> str:
    dd, mm, yy, nnn = rng.randint(1, 28), rng.randint(1, 12), rng.randint(50, 99), rng.randint(2, 899)
    number = int(f"{dd:02d}{mm:02d}{yy:02d}{nnn:03d}")
    return f"{dd:02d}{mm:02d}{yy:02d}-{nnn:03d}{'0123456789ABCDEFHJKLMNPRSTUVWXY'[number % 31]}"


def personnummer(rng: random.Random) -> str:
    body = f"{rng.randint(50, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return f"{body[:6]}-{body[6:]}{_luhn_digit(body)}"


def _luhn_digit(body: str) -> str:
    total = sum(
        (int(c) * 2 - 9 if int(c) > 4 else int(c) * 2) if i % 2 == 0 else int(c) for i, c in enumerate(reversed(body))
    )
    return str((10 - total % 10) % 10)


def nhs(rng: random.Random) -> str:
    while True:
        body = "".join(rng.choice(string.digits) for _ in range(9))
        check = 11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check != 10:
            digits = body + str(check)
            return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def ipv4(rng: random.Random) -> str:
    return rng.choice(
        [
            f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        ]
    )


def ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    return rng.choice(["2001:db8::" + ":".join(groups[:3]), "fe80::" + ":".join(groups[:4]), ":".join(groups)])


def rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits


def jwt(rng: random.Random) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    head = part({"alg": "HS256", "typ": "JWT"})
    body = part(
        {"sub": str(rng.randint(10**6, 10**7)), "name": rng.choice(NAMES), "iat": 1700000000 + rng.randint(0, 10**6)}
    )
    return f"{head}.{body}.{rand(rng, ALNUM + '-_', 43)}"


def pem(rng: random.Random) -> str:
    kind = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    lines = [rand(rng, ALNUM + "+/", 64) for _ in range(rng.randint(3, 6))]
    return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----"


def password(rng: random.Random) -> str:
    words = ["Tr0ub4dor", "hunter", "Summer", "Blue", "dragon", "P@ss", "winter", "Coffee"]
    return rng.choice(words) + rand(rng, string.digits, rng.randint(2, 4)) + rng.choice(["!", "#", "", "?", "x"])


NAMES = [
    "Ana Silva",
    "Jonas Becker",
    "Chloé Martin",
    "Priya Nair",
    "Tom Walsh",
    "Marta Nowak",
    "Aiko Tanaka",
    "Luca Rossi",
    "Sofia García",
    "Erik Lund",
]
DOMAINS = [
    "example.com",
    "mail.example.co.uk",
    "posteo.de",
    "orange.fr",
    "startup.io",
    "uni-example.edu",
    "correo.es",
    "example.org",
]


def email(rng: random.Random) -> str:
    first, last = rng.choice(NAMES).split()
    first = first.replace("é", "e").replace("í", "i").casefold()
    local = rng.choice(
        [f"{first}.{last.casefold()}", f"{first[0]}{last.casefold()}", f"{first}+news", f"{first}_{rng.randint(1, 99)}"]
    )
    value = f"{local}@{rng.choice(DOMAINS)}"
    return value if rng.random() < 0.8 else value.title()


# -- templates -------------------------------------------------------------------------------------------------------

PII_TEMPLATES: dict[str, list[str]] = {
    "email": [
        "You can reach {name} at {v} if the invoice is late.",
        "Contact: {v}",
        "Send the draft to {v}, thanks!",
        "Schreib mir an {v}, ich antworte heute Abend.",
        "Mon adresse est {v}.",
    ],
    "phone": [
        "Call me on {v} after six.",
        "Her mobile is {v}.",
        "Tel.: {v}",
        "Ruf mich an unter {v}.",
        "You can text {name} at {v} tomorrow.",
        "Mon numéro: {v}",
    ],
    "card": [
        "My card number is {v}, expiry 09/27.",
        "Charge it to {v} please.",
        "Card: {v}",
        "The payment failed for card {v} again.",
    ],
    "iban": ["Please transfer the deposit to {v}.", "IBAN: {v}", "Meine IBAN lautet {v}.", "Virement sur {v} svp."],
    "ssn": ["My SSN is {v}.", "Social security number: {v}", "He wrote his social security number, {v}, on the form."],
    "ip": [
        "The printer is at {v} on the office network.",
        "Blocked login from {v} at 03:12.",
        "ssh admin@{v}",
        "Our DNS server answers on {v}.",
    ],
    "address": ["I moved to {v} last spring.", "Deliver it to {v}, please.", "The meeting is at {v}, second floor."],
}
NATIONAL = [
    ("My national insurance number is {v}.", nino),
    ("NINO: {v}", nino),
    ("Mi DNI es {v}.", nif),
    ("NIF {v}", nif),
    ("Mój PESEL to {v}.", pesel),
    ("Henkilötunnus: {v}", hetu),
    ("Mitt personnummer är {v}.", personnummer),
    ("Your NHS number is {v}.", nhs),
]
ADDRESSES = [
    "221B Baker Street",
    "1600 Pennsylvania Avenue NW",
    "42 Elm St.",
    "350 Fifth Avenue",
    "10 Downing Street",
    "7 Maple Drive, Apt 4B",
    "Hauptstraße 5",
    "Musterstr. 12a",
    "Kaiserweg 3",
    "12 rue de la Paix",
    "5 avenue des Champs-Élysées",
    "Via Roma 3",
    "Calle Mayor 10",
    "Prinsengracht 263",
    "Storgatan 14",
    "88 Queen's Road",
    "3 Harbour Lane",
]
PHONE_REGIONS = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "AU", "IN", "JP", "BR", "CH"]
IBAN_COUNTRIES = list(_IBAN_BBAN)

SECRET_TEMPLATES: list[tuple[str, str]] = [
    ("aws_access_key_id = {v}", "aws"),
    ('AWS_ACCESS_KEY_ID="{v}"', "aws"),
    ("The key {v} was leaked in the logs.", "aws"),
    ("aws_secret_access_key = {v}", "aws_secret"),
    ("git remote set-url origin https://{v}@github.com/acme/app.git", "github"),
    ("GITHUB_TOKEN={v}", "github"),
    ("I pasted my token {v} into the chat by mistake.", "github"),
    ("SLACK_BOT_TOKEN: {v}", "slack"),
    ('slack_token = "{v}"', "slack"),
    ("stripe.api_key = '{v}'", "stripe"),
    ("STRIPE_SECRET_KEY={v}", "stripe"),
    ("Use {v} for the live account.", "stripe"),
    ("Authorization: Bearer {v}", "jwt"),
    ('{"access_token": "{v}", "expires_in": 3600}', "jwt"),
    ('password = "{v}"', "password"),
    ("DB_PASSWORD={v}", "password"),
    ("  password: {v}", "password"),
    ('{"user": "admin", "password": "{v}"}', "password"),
    ("my wifi password is {v} by the way", "password"),
    ("The admin password was changed to {v} yesterday.", "password"),
    ("DATABASE_URL=postgres://app:{v}@db.internal:5432/prod", "conn"),
    ('engine = create_engine("mysql+pymysql://root:{v}@localhost/shop")', "conn"),
    ("mongodb+srv://reporting:{v}@cluster0.example.net/test", "conn"),
    ("redis://default:{v}@cache:6379/0", "conn"),
    ("{v}", "pem"),
    ("Here is the deploy key:\n{v}\nKeep it safe.", "pem"),
]
SECRET_TYPE = {
    "aws": "api_key",
    "aws_secret": "api_key",
    "github": "token",
    "slack": "token",
    "stripe": "api_key",
    "jwt": "token",
    "password": "password",
    "conn": "password",
    "pem": "private_key",
}

NEGATIVES = [
    "Order #{order} shipped on {date} and should arrive by Friday.",
    "Your order number is {order}.",
    "Invoice no. {order} is due on {date2}.",
    "Tracking number: {order}",
    "Upgrade to version {version} before the release on {date}.",
    "Fixed in v{version} (commit {sha}).",
    "The build 10.0.19045.{n4} failed on Windows.",
    "Checksum (sha256): {sha256}",
    "Request id {uuid} timed out.",
    "It costs $1,299.00, or €{n3},99 with the discount.",
    "The population grew to 8,336,817 by {year}.",
    "Meet me at 14:30 on {date2}; bring the {n3} printed pages.",
    "Python 3.11.9 and numpy 1.26.4 are installed.",
    "The ISBN is 978-3-16-148410-0.",
    "Room 4021, building B, floor 3.",
    "We sold {n4} units in Q3 {year}, up 12.5%.",
    "The temperature was 21.5 °C and the humidity 64 %.",
    "Call the function with retries=3 and timeout=30.",
    "She ran 42.195 km in 3:12:45.",
    "The password must be at least 12 characters long.",
    "Reset your password from the settings page.",
    "Set api_key to your own value in config.toml.",
    "Chapter 12 covers pages 301-345.",
    "The git hash {short} broke the tests.",
    "The meeting moved from 2024-03-15 to 2024-03-22.",
    "Coordinates 48.8584, 2.2945 mark the tower.",
    "I think the weather in Lisbon is lovely in May, and the food is great.",
    "Token economics is a topic for another day.",
    "The key insight is that caching helps.",
    "Patch 1.2.3.4 of the game adds a new map.",
    "Use port 8080 and 2 workers.",
]


def build(seed: int = SEED, per_type: int = 12) -> list[Item]:
    """The whole set: ``per_type`` items per PII type, every secret template several times, every negative twice."""
    rng = random.Random(seed)
    items: list[Item] = []
    makers = {
        "email": lambda: email(rng),
        "card": lambda: card(rng),
        "ssn": lambda: ssn(rng),
        "phone": lambda: phone(rng, PHONE_REGIONS[len(items) % len(PHONE_REGIONS)]),
        "iban": lambda: iban(rng, IBAN_COUNTRIES[len(items) % len(IBAN_COUNTRIES)]),
        "ip": lambda: ipv4(rng) if rng.random() < 0.6 else ipv6(rng),
        "address": lambda: rng.choice(ADDRESSES),
    }
    for kind, templates in PII_TEMPLATES.items():
        for i in range(per_type):
            template = templates[i % len(templates)].replace("{name}", rng.choice(NAMES).split()[0])
            items.append(fill(template, "pii", v=(makers[kind](), kind)))
    for i in range(max(per_type, len(NATIONAL))):
        template, make = NATIONAL[i % len(NATIONAL)]
        items.append(fill(template, "pii", v=(make(rng), "national_id")))
    # several in one message, as people write them
    for _ in range(per_type // 2):
        name = rng.choice(NAMES)
        items.append(
            fill(
                f"Name: {name}\nEmail: {{e}}\nPhone: {{p}}\nIBAN: {{i}}",
                "pii",
                e=(email(rng), "email"),
                p=(phone(rng, rng.choice(PHONE_REGIONS)), "phone"),
                i=(iban(rng, rng.choice(IBAN_COUNTRIES)), "iban"),
            )
        )
    secret_values = {
        "aws": lambda: "AKIA" + rand(rng, string.ascii_uppercase + string.digits, 16),
        "aws_secret": lambda: rand(rng, ALNUM + "/+", 40),
        "github": lambda: "ghp_" + rand(rng, ALNUM, 36),
        "slack": lambda: f"xoxb-{rand(rng, string.digits, 12)}-{rand(rng, string.digits, 13)}-{rand(rng, ALNUM, 24)}",
        "stripe": lambda: rng.choice(["sk_live_", "rk_live_", "sk_test_"]) + rand(rng, ALNUM, 24),
        "jwt": lambda: jwt(rng),
        "password": lambda: password(rng),
        # a URL carries its password percent-encoded: these characters never appear there as they are
        "conn": lambda: re.sub(r"[@?#!]", "", password(rng)),
        "pem": lambda: pem(rng),
    }
    for _ in range(3):
        for template, kind in SECRET_TEMPLATES:
            value = secret_values[kind]()
            while kind == "aws_secret" and not (re.search(r"\d", value) and re.search(r"[A-Za-z]", value)):
                value = secret_values[kind]()
            items.append(fill(template, "secret", v=(value, SECRET_TYPE[kind])))
    for _ in range(2):
        for template in NEGATIVES:
            values = {
                "order": rand(rng, string.digits, rng.choice([8, 10, 12])),
                "date": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "date2": f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.2025",
                "version": f"{rng.randint(1, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
                "sha": rand(rng, "0123456789abcdef", 40),
                "sha256": rand(rng, "0123456789abcdef", 64),
                "short": rand(rng, "0123456789abcdef", 7),
                "n3": str(rng.randint(100, 999)),
                "n4": str(rng.randint(1000, 9999)),
                "year": str(rng.randint(1990, 2025)),
                "uuid": "-".join(rand(rng, "0123456789abcdef", n) for n in (8, 4, 4, 4, 12)),
            }
            text = template
            for key, value in values.items():
                text = text.replace("{" + key + "}", value)
            items.append(Item(text, (), "negative"))
    return items
