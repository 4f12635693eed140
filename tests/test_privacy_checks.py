"""The privacy checker (assistant/checks/privacy.py): every type found in a realistic sentence, hard negatives left
alone, placeholders, the policy cases, a very long input, and no network."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest

from assistant.checks import Finding, Policy
from assistant.checks.privacy import apply_policy, find_pii, redact

FOUND = [
    ("Write to ana.silva@example.co.uk about the lease.", "email", "ana.silva@example.co.uk"),
    ("Call me on +44 20 7946 0958 after six.", "phone", "+44 20 7946 0958"),
    ("Ruf mich an: +49 151 23456789.", "phone", "+49 151 23456789"),
    ("Appelez-moi au +33 6 12 34 56 78 demain.", "phone", "+33 6 12 34 56 78"),
    ("Her number is (415) 555-2671.", "phone", "(415) 555-2671"),
    ("My Visa card is 4111 1111 1111 1111, expiry 09/27.", "card", "4111 1111 1111 1111"),
    ("Amex: 3782-822463-10005", "card", "3782-822463-10005"),
    ("Please send it to DE89 3704 0044 0532 0130 00.", "iban", "DE89 3704 0044 0532 0130 00"),
    ("IBAN GB29NWBK60161331926819 for the deposit.", "iban", "GB29NWBK60161331926819"),
    ("My SSN is 536-61-2619.", "ssn", "536-61-2619"),
    ("My national insurance number is AB123456C.", "national_id", "AB123456C"),
    ("Mi DNI es 12345678Z.", "national_id", "12345678Z"),
    ("The NAS is at 192.168.1.20 on the home network.", "ip", "192.168.1.20"),
    # "server is" once read as "ver is", a version number's cue: a word's tail is not a cue
    ("My server is 203.0.113.77, port 22.", "ip", "203.0.113.77"),
    ("Blocked login from 2001:db8::8a2e:370:7334 last night.", "ip", "2001:db8::8a2e:370:7334"),
    ("I moved to 221B Baker Street last spring.", "address", "221B Baker Street"),
    ("Liefere es an Hauptstraße 5, bitte.", "address", "Hauptstraße 5"),
    ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "api_key", "AKIAIOSFODNN7EXAMPLE"),
    ("export STRIPE_SECRET_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dc", "api_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    (
        "I pasted ghp_16C7e42F292c6912E7710c838347Ae178B4a by mistake.",
        "token",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    ),
    (
        "SLACK_BOT_TOKEN: xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "token",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    (
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THs",
        "token",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THs",
    ),
    ('db_password = "Tr0ub4dor&3"', "password", "Tr0ub4dor&3"),
    ("my wifi password is hunter2024 by the way", "password", "hunter2024"),
    ("DATABASE_URL=postgres://app:s3cretPass@db.internal:5432/prod", "password", "s3cretPass"),
]
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1c7+9z5Pad7OejecsQ0bu3aumHXh\n-----END RSA PRIVATE KEY-----"

NEGATIVES = [
    "Order #4111111111111111 shipped on 2024-03-15 and should arrive by Friday.",
    "Your order number is 761550017751.",
    "Invoice no. 5070490600 is due on 04.12.2025.",
    "Upgrade to version 10.0.19045.2965 before the release.",
    "Patch 1.2.3.4 of the game adds a new map.",
    "Fixed in commit 3f786850e387550fdab836ed7e6dc881de23001b.",
    "Request id 123e4567-e89b-12d3-a456-426614174000 timed out.",
    "It costs $1,299.00, or €212,99 with the discount.",
    "The population grew to 8,336,817 by 2020.",
    "The password must be at least 12 characters long, and the token has expired.",
    "Reset your password from the settings page; set api_key to your own value.",
    "I think the weather in Lisbon is lovely in May, and the food is great.",
]


@pytest.mark.parametrize(("text", "kind", "value"), FOUND, ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(FOUND)])
def test_every_type_is_found_in_a_sentence(text: str, kind: str, value: str) -> None:
    findings = find_pii(text)
    assert [(f.type, f.text) for f in findings] == [(kind, value)]
    f = findings[0]
    assert text[f.start : f.end] == value
    assert f.secret == (kind in {"api_key", "token", "password", "private_key"})


def test_a_private_key_block_is_one_secret() -> None:
    text = f"Here is the deploy key:\n{PEM}\nKeep it safe."
    [finding] = find_pii(text)
    assert finding.type == "private_key" and finding.secret and finding.text == PEM


@pytest.mark.parametrize("text", NEGATIVES)
def test_hard_negatives_are_not_flagged(text: str) -> None:
    assert find_pii(text) == []


def test_findings_are_sorted_and_never_overlap() -> None:
    text = (
        "Name: Ana\nEmail: ana@example.com\nPhone: +1 201-555-4955\nCard: 4111-1111-1111-1111\n"
        "Login: postgres://ana:Hunter2024@10.0.0.5/db\n"
    )
    findings = find_pii(text)
    assert [f.type for f in findings] == ["email", "phone", "card", "password", "ip"]
    assert all(a.end <= b.start for a, b in zip(findings, findings[1:], strict=False))


def test_redact_uses_one_placeholder_per_type_and_secret_for_every_credential() -> None:
    text = "Mail ana@example.com, card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE, pwd: Hunter2024!"
    assert redact(text, find_pii(text)) == "Mail [email], card [card], key [secret], pwd: [secret]"
    assert redact("nothing here", []) == "nothing here"


def test_redact_skips_overlapping_findings_from_elsewhere() -> None:
    text = "abc 4111 1111 1111 1111 def"
    overlapping = [Finding("card", 4, 23, text[4:23]), Finding("phone", 9, 18, text[9:18])]
    assert redact(text, overlapping) == "abc [card] def"


# -- policy -------------------------------------------------------------------------------------------------------


REPLY = "Sure: your card 4111-1111-1111-1111 and Bob's email bob@example.org; the key is AKIAIOSFODNN7EXAMPLE."
TYPED = ["My card is 4111 1111 1111 1111, what is it again? Also my key is AKIAIOSFODNN7EXAMPLE."]


def test_the_users_own_data_is_shown_back_and_the_rest_masked() -> None:
    findings = find_pii(REPLY)
    outcome = apply_policy(REPLY, findings, TYPED, "redact")
    assert [f.type for f in findings] == ["card", "email", "api_key"]
    # the card was typed (with spaces, shown back with dashes); the email came from elsewhere; the key is a secret
    assert outcome.actions == ["shown", "masked", "masked"]
    assert outcome.text == "Sure: your card 4111-1111-1111-1111 and Bob's email [email]; the key is [secret]."
    assert not outcome.blocked
    assert outcome.items()[1] == {
        "type": "email",
        "start": findings[1].start,
        "end": findings[1].end,
        "action": "masked",
    }


def test_an_email_typed_in_another_case_is_the_users_own() -> None:
    text = "I sent it to Ana.Silva@Example.com."
    outcome = apply_policy(text, find_pii(text), ["my address is ana.silva@example.com"], "redact")
    assert outcome.actions == ["shown"] and outcome.text == text


def test_a_phone_number_typed_in_national_form_is_shown_back_in_international_form() -> None:
    text = "I'll call you on +44 20 7946 0958."
    outcome = apply_policy(text, find_pii(text), ["my number is 020 7946 0958"], "redact")
    assert outcome.actions == ["shown"]


def test_two_numbers_the_user_typed_side_by_side_do_not_make_a_third() -> None:
    text = "Your card 4111 1111 1111 1111 is on file."
    outcome = apply_policy(text, find_pii(text), ["codes 4111 1111 and 1111 1111 for the lockers"], "redact")
    assert outcome.actions == ["masked"]


def test_an_ip_the_user_typed_is_not_a_longer_one() -> None:
    text = "The server is at 10.0.0.12."
    outcome = apply_policy(text, find_pii(text), ["my laptop is 10.0.0.1"], "redact")
    assert outcome.actions == ["masked"]


def test_data_the_user_never_typed_is_masked() -> None:
    text = "Your colleague's IBAN is DE89 3704 0044 0532 0130 00 and her phone +44 20 7946 0958."
    outcome = apply_policy(text, find_pii(text), ["What is Maria's bank account?"], "redact")
    assert outcome.actions == ["masked", "masked"]
    assert outcome.text == "Your colleague's IBAN is [iban] and her phone [phone]."


def test_secrets_are_masked_even_when_the_user_typed_them() -> None:
    text = "Your GitHub token is ghp_16C7e42F292c6912E7710c838347Ae178B4a."
    said = ["remember my token ghp_16C7e42F292c6912E7710c838347Ae178B4a"]
    policies: tuple[Policy, ...] = ("warn", "redact", "block")
    for policy in policies:
        outcome = apply_policy(text, find_pii(text), said, policy)
        assert outcome.actions == ["masked"] and outcome.text == "Your GitHub token is [secret]."
        assert not outcome.blocked  # a secret is masked, never a reason to withhold the reply


def test_warn_flags_without_masking() -> None:
    text = "Bob's email is bob@example.org and the key is AKIAIOSFODNN7EXAMPLE."
    outcome = apply_policy(text, find_pii(text), [], "warn")
    assert outcome.actions == ["warned", "masked"]
    assert outcome.text == "Bob's email is bob@example.org and the key is [secret]."


def test_block_withholds_a_reply_that_leaks_and_passes_one_that_does_not() -> None:
    leak = "Bob's SSN is 536-61-2619."
    blocked = apply_policy(leak, find_pii(leak), [], "block")
    assert blocked.blocked and blocked.text == "" and blocked.actions == ["masked"]
    own = apply_policy(leak, find_pii(leak), ["store my SSN 536 61 2619 please"], "block")
    assert not own.blocked and own.text == leak and own.actions == ["shown"]


def test_off_shows_everything() -> None:
    text = "Key AKIAIOSFODNN7EXAMPLE, mail bob@example.org."
    outcome = apply_policy(text, find_pii(text), [], "off")
    assert outcome.text == text and outcome.actions == ["shown", "shown"] and not outcome.blocked


# -- size, concurrency and the network ---------------------------------------------------------------------------


def test_a_200000_character_input() -> None:
    chunk = "Reach Ana at ana@example.com or +44 20 7946 0958; order #71681057 shipped on 2024-04-09. "
    text = chunk * (200_000 // len(chunk))
    text += "x" * (200_000 - len(text))
    findings = find_pii(text)
    assert len(findings) >= 2 * (200_000 // len(chunk))
    assert {f.type for f in findings} == {"email", "phone"}
    assert "@" not in redact(text, findings).replace("[email]", "")
    assert find_pii("1234 " * 40_000) == []  # a long run of digit groups: no card, no phone, and no hang


def test_concurrent_first_use_loads_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"mail{i}@example.com and 4111 1111 1111 1111" for i in range(16)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(find_pii, texts))
    assert all([f.type for f in r] == ["email", "card"] for r in results)


def test_no_socket_is_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            attempts.append(what)
            raise OSError(f"network use is not allowed in this test: {what}")

        return blocked

    for name in ("connect", "connect_ex", "sendto", "bind"):
        monkeypatch.setattr(socket.socket, name, refuse(f"socket.{name}"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    text = "Write to ana@example.co.uk, the key is AKIAIOSFODNN7EXAMPLE, IBAN DE89 3704 0044 0532 0130 00."
    assert [f.type for f in find_pii(text)] == ["email", "api_key", "iban"]
    assert attempts == []


def test_a_fresh_process_imports_and_checks_with_no_network() -> None:
    """In a new interpreter (nothing loaded yet), sockets refused from the start: first load and first check; and
    neither torch nor transformers imported by it."""
    code = (
        "import socket\n"
        "def no(*a, **k): raise SystemExit('network: ' + repr(a[1:] if a else k))\n"
        "socket.socket.connect = no; socket.create_connection = no; socket.getaddrinfo = no\n"
        "from assistant.checks.privacy import find_pii\n"
        "print([f.type for f in find_pii('ana@example.com, +44 20 7946 0958')])\n"
        "import sys; print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # presidio's optional transformers engine (and torch with it) is kept out: seconds and hundreds of MB
    assert done.stdout.split("\n")[:2] == ["['email', 'phone']", "False False"]
