"""The secret detector (what it finds, what it leaves alone, what a fact is about), the warning when a secret is saved,
and a real session that keeps it out of prompts that are not about it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.runtime import Backend
from assistant.sensitive import (
    about,
    find_sensitive,
    iban_ok,
    is_sensitive,
    keep_in_prompt,
    luhn_ok,
    save_warning,
    topic_words,
)
from assistant.session import Session
from storage.db import Store, open_store
from storage.embedder import Embedder
from storage.facts import list_facts
from storage.memory import Memory
from tests.test_cli_chat import run_cli

SECRETS = [
    # (fact, kind, the value it must point at)
    ("my wifi password is hunter2", "password", "hunter2"),
    ("My Wi-Fi password: PastelNet2024!", "password", "PastelNet2024"),
    ("The password for my bank account is Tr0ub4dor&3", "password", "Tr0ub4dor&3"),
    ("my email password is 'correct horse battery staple'", "password", "correct horse battery staple"),
    ("Remember the wifi key is ABCD-1234-EFGH", "password", "ABCD-1234-EFGH"),
    ("my bank card PIN is 4821", "pin", "4821"),
    ("The door code is 1234#", "pin", "1234#"),
    ("garage code: 5590", "pin", "5590"),
    ("My phone passcode is 112233", "pin", "112233"),
    ("The combination of my bike lock is 4-2-7-1", "pin", "4-2-7-1"),
    ("my OpenAI key is sk-proj-abcDEF1234567890abcdef1234", "api_key", "sk-proj-abcDEF1234567890abcdef1234"),
    ("GitHub token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "api_key", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("api key = 3f9a8b7c6d5e4f3a2b1c", "api_key", "3f9a8b7c6d5e4f3a2b1c"),
    ("AWS key AKIAIOSFODNN7EXAMPLE", "api_key", "AKIAIOSFODNN7EXAMPLE"),
    ("Authorization: Bearer abcdef0123456789abcdef0123", "api_key", "abcdef0123456789abcdef0123"),
    ("my visa card is 4111 1111 1111 1111", "card_number", "4111 1111 1111 1111"),
    ("card number 5555-5555-5555-4444 exp 12/28", "card_number", "5555-5555-5555-4444"),
    ("Amex 378282246310005", "card_number", "378282246310005"),
    ("My IBAN is DE89 3704 0044 0532 0130 00", "iban", "DE89 3704 0044 0532 0130 00"),
    ("iban GB82WEST12345698765432", "iban", "GB82WEST12345698765432"),
    ("my SSN is 123-45-6789", "government_id", "123-45-6789"),
    ("social security number: 123456789", "government_id", "123456789"),
    ("My passport number is X1234567", "government_id", "X1234567"),
]


@pytest.mark.parametrize(("fact", "kind", "value"), SECRETS)
def test_secrets_are_found_with_their_kind_and_exact_span(fact: str, kind: str, value: str) -> None:
    findings = find_sensitive(fact)
    assert [(f.kind, f.value(fact)) for f in findings] == [(kind, value)]


def test_private_key_block_and_jwt() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH PRIVATE KEY-----"
    text = f"my key:\n{key}\nthanks"
    assert [(f.kind, f.value(text)) for f in find_sensitive(text)] == [("private_key", key)]
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    assert [f.kind for f in find_sensitive(f"session {jwt}")] == ["api_key"]


EVERYDAY = [
    "my dog is called Rex",
    "I was born in 1990",
    "My birthday is 14 March 1990",
    "I am vegetarian",
    "My sister Noor has a dachshund called Pepperoni",
    "My wifi is called PastelNet",
    # Decided: contact details are personal, not credentials; recalling them is the assistant's job.
    "my phone number is +1 415 555 2671",
    "my phone number is 0049 151 23456789",
    "my email is noor@example.com",
    "I live at 221B Baker Street, London NW1 6XE",
    # Credential words without a credential
    "My password manager is Bitwarden",
    "my password is strong",
    "my password is the same everywhere",
    "The wifi password is written on the router",
    "I forgot my password again",
    "I need to reset my password",
    "my PIN is secret",
    "my token for the bus is expired",
    "the pin on the map is at the station",
    "The combination of flavours is great",
    "My secret is that I love pineapple pizza",
    "My passport expires in 2030",
    # Numbers that are not cards, accounts or ids
    "my order number is 112-4567890-1234567",
    "My favourite number is 42",
    "I paid 1234.56 euros on 2024-05-01",
    "The meeting is at 10:30 in room 4B",
    "My employee id is 48213",
    "the tracking code is 1Z999AA10123456784",
    "I ran 10 km in 52 minutes",
    "Call me at 415-555-2671 after six",
]


@pytest.mark.parametrize("fact", EVERYDAY)
def test_everyday_facts_are_not_secrets(fact: str) -> None:
    assert find_sensitive(fact) == []
    assert save_warning(fact) is None
    assert keep_in_prompt(fact, None) and keep_in_prompt(fact, "What is the capital of France?")


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE88 3704 0044 0532 0130 00")
    # A 16-digit number with a card's prefix but a wrong checksum is not a card.
    assert find_sensitive("reference 4111 1111 1111 1112") == []


def test_several_findings_in_order() -> None:
    fact = "wifi password: hunter2, and the alarm code is 9911"
    assert [(f.kind, f.value(fact)) for f in find_sensitive(fact)] == [("password", "hunter2"), ("pin", "9911")]
    assert "a password and a PIN or passcode" in (save_warning(fact) or "")


def test_topic_words_leave_the_secret_out_and_normalise() -> None:
    assert topic_words("my wifi password is hunter2") == {"wifi", "password"}
    assert topic_words("My Wi-Fi PASSWORDS are hunter2") == {"wifi", "password"}
    assert "hunter2" not in topic_words("the password is hunter2")


def test_a_secret_stays_out_of_the_prompt_unless_the_question_is_about_it() -> None:
    fact = "my wifi password is hunter2"
    assert is_sensitive(fact)
    assert keep_in_prompt(fact, "What's my wifi password?")
    assert keep_in_prompt(fact, "what was the password again")
    assert keep_in_prompt(fact, "How do I connect to the Wi-Fi?")
    assert not keep_in_prompt(fact, "What is the capital of France?")
    assert not keep_in_prompt(fact, "Write a haiku about my dog")
    assert not keep_in_prompt(fact, None)  # no question: nothing can be about it
    assert about("what is my bank card pin", "my bank card PIN is 4821")


def test_save_warning_names_the_kind_and_the_way_out() -> None:
    warning = save_warning("my wifi password is hunter2")
    assert warning is not None
    assert "a password" in warning and "only when you ask about it" in warning and "memory forget" in warning
    assert "hunter2" not in warning  # the warning never repeats the secret


# -- saving a secret warns; the prompt leaves it out unless asked ---------------------------------------------------

WIFI = "my wifi password is hunter2"


def test_cli_remember_warns_on_stderr_and_still_stores(home: Path) -> None:
    done = run_cli("memory", "remember", WIFI)
    assert done.returncode == 0, done.stderr
    assert "Warning: This fact looks like it holds a password" in done.stderr
    assert "`assistant memory forget 1`" in done.stderr and "hunter2" not in done.stderr.split("Warning:")[1]
    plain = run_cli("memory", "remember", "I am vegetarian")
    assert plain.returncode == 0 and "Warning" not in plain.stderr
    with open_store(home) as store:
        assert [f.text for f in list_facts(store)] == ["I am vegetarian", WIFI]


def test_chat_remember_command_and_sentence_warn_in_the_notice(fake_session: Session, store: Store) -> None:
    turn = fake_session.start_turn(f"/remember {WIFI}")
    assert "Noted." in "".join(c.text for c in turn.stream())
    assert turn.notice and "looks like it holds a password" in turn.notice
    assert "`assistant memory forget 1`" in turn.notice
    said = fake_session.start_turn("Remember that the door code is 4821.")
    "".join(c.text for c in said.stream())
    assert said.notice and "a PIN or passcode" in said.notice
    quiet = fake_session.start_turn("/remember I am vegetarian")
    "".join(c.text for c in quiet.stream())
    assert quiet.notice is None
    assert len(list_facts(store)) == 3  # warned, never refused


@pytest.mark.model
def test_a_real_session_keeps_the_secret_out_of_unrelated_prompts(
    store: Store, settings: Settings, home: Path, real_backend: Backend, embedder: Embedder
) -> None:
    memory = Memory(store, home, embedder=embedder)
    session = Session(
        store, settings, home=home, loader=lambda spec, s: real_backend, memory=memory, background_index=False
    )
    try:
        saved = session.start_turn(f"/remember {WIFI}")
        "".join(c.text for c in saved.stream())
        run_turn(session.start_turn("/remember My dog is called Rex"))
        session.index_now()  # the /remember messages are in the index too: recall must leave them out as well

        unrelated = session.start_turn("What is the capital of France?")
        assert "hunter2" not in unrelated.plan.prompt
        assert "My dog is called Rex" in unrelated.plan.prompt  # ordinary facts still go in
        assert "hunter2" not in run_turn(unrelated)
        assert all("hunter2" not in f.text for f in unrelated.facts)
        assert all("hunter2" not in m.text for m in unrelated.memories)

        asked = session.start_turn("What is my wifi password?")
        assert "hunter2" in asked.plan.prompt
        assert [f.text for f in asked.facts if "hunter2" in f.text] == [WIFI]
        run_turn(asked)
    finally:
        session.close()


def run_turn(turn: Any) -> str:
    return "".join(chunk.text for chunk in turn.stream())
