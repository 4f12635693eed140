"""The stream guard (assistant/checks/stream.py) on the real detectors: what is released while a reply streams never
shows a value the final check masks, it ends equal to what is stored, the policy cases hold piece by piece, text
with no trigger flows with a few words of lag, and a very long reply costs linear work."""

from __future__ import annotations

import pytest

from assistant.checks import Finding
from assistant.checks.privacy import find_pii
from assistant.checks.stream import StreamGuard, shown_offset

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1c7+9z5Pad7OejecsQ0bu3aumHXh\n"
    "q8Zr4mK2LwS0tGg9yVb1xE3fJpQn7uA5cD6hN8iR2oT4vW1zY3aB5dF7gH9jK\n-----END RSA PRIVATE KEY-----"
)
USER = ["Hi, I'm Ana. My email is ana.silva@example.com and my mobile is +44 20 7946 0958."]

# (reply, the user's inputs, values that must be masked, values that must be shown)
REPLIES = [
    (
        "Sure, Ana! I will write to ana.silva@example.com and text you on +44 20 7946 0958 tomorrow. "
        "Bob's address is bob.jones@example.org, and his card 4111 1111 1111 1111 expires soon.",
        USER,
        ["bob.jones@example.org", "4111 1111 1111 1111"],
        ["ana.silva@example.com", "+44 20 7946 0958"],
    ),
    (
        "The rent goes to DE89 3704 0044 0532 0130 00 on the 1st of each month.\nCall (415) 555-2671 if it bounces.",
        [],
        ["DE89 3704 0044 0532 0130 00", "(415) 555-2671"],
        ["1st of each month"],
    ),
    (
        "Here is the config you asked for:\n\nexport STRIPE_SECRET_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dc\n"
        'db_password = "Tr0ub4dor&3"\nDATABASE_URL=postgres://app:s3cretPass@db.internal:5432/prod\nDone!',
        ["my key is sk_live_4eC39HqLyjWDarjtT1zdp7dc and the password is Tr0ub4dor&3"],
        ["sk_live_4eC39HqLyjWDarjtT1zdp7dc", "Tr0ub4dor&3", "s3cretPass"],
        ["db.internal:5432/prod"],
    ),
    (
        f"Your key, as stored:\n{PEM}\nKeep it out of the repository. Version 2.4.1 fixed the bug.",
        [],
        ["MIIEowIBAAKCAQEA1c7", "q8Zr4mK2LwS0tGg9yVb1xE3fJpQn7uA5cD6hN8iR2oT4vW1zY3aB5dF7gH9jK"],
        ["Version 2.4.1 fixed the bug."],
    ),
    (
        "I moved to 221B Baker Street last spring, and my friend lives at Hauptstraße 5, 10115 Berlin. "
        "The SSN on the form was 536-61-2619. The NAS is at 192.168.1.20 on the home network.",
        [],
        ["221B Baker Street", "Hauptstraße 5", "536-61-2619", "192.168.1.20"],
        ["last spring"],
    ),
    (
        "Your wifi password is hunter2024 by the way. The admin password:\nHunterTwo!\nand the token "
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a was revoked. My order #4111111111111111 shipped on 2024-03-15.",
        [],
        ["hunter2024", "HunterTwo!", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"],
        ["#4111111111111111", "2024-03-15"],
    ),
    (
        "Meet me at 42 Elm St. apt 5 at 10:30. Mi DNI es 12345678Z. Her NI number is AB123456C, see you!",
        [],
        ["42 Elm St. apt 5", "12345678Z", "AB123456C"],
        ["10:30"],
    ),
    (  # a value on the line after its key, and a password in prose with no digit
        "The admin password:\nHunterTwo!\nSee you all soon, friends. My password is Hunter!! and that is it.",
        [],
        ["HunterTwo", "Hunter!!"],
        ["See you all soon, friends."],
    ),
    (
        'Use this config:\n{"host": "10.0.0.5", "user": "admin", "password": "pa55word!"}\nThen run\n'
        'curl -H "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0" '
        "https://api.example.com/v1/items",
        [],
        ["pa55word!", "10.0.0.5", "eyJhbGciOiJIUzI1NiJ9", "dozjgNryP4J3jVmNHl0w5N_XgL0"],
        ["https://api.example.com/v1/items"],
    ),
    (
        "1. Preheat the oven to 180 degrees.\n2. Mix 200 g of flour with 3 eggs.\n3. Bake for 25 minutes.\n"
        "Version 3.2.1 of the app has the timer; ping me at jo@example.com",
        [],
        ["jo@example.com"],
        ["Preheat the oven to 180 degrees.", "Version 3.2.1", "Bake for 25 minutes."],
    ),
    (
        "Blocked login from 2001:db8::8a2e:370:7334 last night. Ring her at +33 6 12 34 56 78\nor at home.",
        [],
        ["2001:db8::8a2e:370:7334", "+33 6 12 34 56 78"],
        ["last night", "or at home."],
    ),
    (  # triggers with no digit: a long token, an address of letters
        "I rotated sk-proj-AbcdefghijklmnopqrstuvwxyzABCD yesterday, all good now. The router is at abcd::ef on the home network, so try that first.",
        [],
        ["sk-proj-AbcdefghijklmnopqrstuvwxyzABCD", "abcd::ef"],
        ["all good now."],
    ),
]
SIZES = range(1, 8)


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def stream(guard: StreamGuard, text: str, size: int, forbidden: list[str], final: str | None = None) -> str:
    """Feed ``text`` in pieces; after every piece nothing forbidden is out, and (given ``final``) what is out is a
    prefix of it. Returns what finish says is left."""
    out = ""
    for piece in pieces(text, size):
        out += guard.feed(piece)
        assert out == guard.shown
        for value in forbidden:
            assert value not in out, f"{value!r} was shown while streaming: {out!r}"
        if final is not None:
            assert final.startswith(out), f"released {out!r} is not a prefix of {final!r}"
    return out


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("case", range(len(REPLIES)))
def test_released_text_never_shows_a_masked_value_and_ends_as_stored(case: int, size: int) -> None:
    reply, inputs, masked, shown = REPLIES[case]
    # the final check on the whole reply (what is stored) is the reference every prefix is held to
    expected = StreamGuard(inputs, "redact")
    expected.feed(reply)
    _, reference = expected.finish()
    for value in masked:
        assert value not in reference.text
    for value in shown:
        assert value in reference.text

    guard = StreamGuard(inputs, "redact")
    out = stream(guard, reply, size, masked, reference.text)
    rest, outcome = guard.finish()
    assert outcome.text == reference.text
    assert out + rest == outcome.text == guard.shown
    assert not guard.diverged
    assert guard.raw == reply


def test_the_users_own_data_is_shown_and_data_they_did_not_type_is_masked() -> None:
    reply = (
        "Noted: your email ana.silva@example.com and mobile +44 20 7946 0958. "
        "Carla's is carla@example.net and her IBAN GB29NWBK60161331926819; the card 5555 5555 5555 4444."
    )
    guard = StreamGuard(USER, "redact")
    out = stream(guard, reply, 3, ["carla@example.net", "GB29NWBK60161331926819", "5555 5555 5555 4444"])
    rest, outcome = guard.finish()
    text = out + rest
    assert "ana.silva@example.com" in text and "+44 20 7946 0958" in text
    assert "[email]" in text and "[iban]" in text and "[card]" in text
    assert {(f.type, a) for f, a in zip(outcome.findings, outcome.actions, strict=True)} == {
        ("email", "shown"),
        ("phone", "shown"),
        ("email", "masked"),
        ("iban", "masked"),
        ("card", "masked"),
    }


@pytest.mark.parametrize("policy", ["redact", "warn"])
def test_secrets_are_masked_even_when_the_user_typed_them(policy: str) -> None:
    key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
    reply = f"Set STRIPE_KEY={key} and password=Tr0ub4dor&3 in the file.\n{PEM}\nThat is all."
    typed = [f"my stripe key is {key}, password=Tr0ub4dor&3", PEM]
    guard = StreamGuard(typed, policy)  # type: ignore[arg-type]
    out = stream(guard, reply, 5, [key, "Tr0ub4dor&3", "MIIEowIBAAKCAQEA1c7"])
    rest, outcome = guard.finish()
    assert out + rest == outcome.text
    assert outcome.text.count("[secret]") == 3
    assert set(outcome.actions) == {"masked"}


def test_warn_shows_personal_data_but_masks_secrets() -> None:
    reply = "Bob is at bob.jones@example.org, card 4111 1111 1111 1111. His token: ghp_16C7e42F292c6912E7710c838347Ae178B4a."
    guard = StreamGuard([], "warn")
    out = stream(guard, reply, 4, ["ghp_16C7e42F292c6912E7710c838347Ae178B4a"])
    rest, outcome = guard.finish()
    assert out + rest == outcome.text
    assert "bob.jones@example.org" in outcome.text and "4111 1111 1111 1111" in outcome.text
    assert "[secret]" in outcome.text
    assert sorted(outcome.actions) == ["masked", "warned", "warned"]


def test_block_releases_nothing_then_the_withheld_sentence() -> None:
    reply = "Bob's email is bob.jones@example.org and his card is 4111 1111 1111 1111. Anything else?"
    guard = StreamGuard([], "block")
    assert all(guard.feed(piece) == "" for piece in pieces(reply, 3))
    rest, outcome = guard.finish()
    assert outcome.blocked
    assert rest == outcome.text == guard.shown
    assert rest == (
        "[Withheld: this reply contained personal data you did not type in this conversation (card, email).]"
    )
    # nothing withheld: the whole reply at the end, secrets masked, the user's own data shown
    guard = StreamGuard(USER, "block")
    reply = "Your email is ana.silva@example.com; the key AKIAIOSFODNN7EXAMPLE is rotated."
    assert all(guard.feed(piece) == "" for piece in pieces(reply, 3))
    rest, outcome = guard.finish()
    assert not outcome.blocked
    assert rest == outcome.text == "Your email is ana.silva@example.com; the key [secret] is rotated."


def test_off_passes_through_and_detects_nothing() -> None:
    calls: list[str] = []

    def detect(text: str) -> list[Finding]:
        calls.append(text)
        return find_pii(text)

    reply = "Bob's email is bob.jones@example.org, key AKIAIOSFODNN7EXAMPLE."
    guard = StreamGuard([], "off", detect=detect)
    assert [guard.feed(p) for p in pieces(reply, 4)] == pieces(reply, 4)
    rest, outcome = guard.finish()
    assert rest == "" and outcome.text == reply and outcome.findings == [] and not outcome.blocked
    assert calls == []


def test_text_with_no_trigger_flows_with_three_words_of_lag_and_no_detection() -> None:
    calls: list[str] = []

    def detect(text: str) -> list[Finding]:
        calls.append(text)
        return find_pii(text)

    reply = (
        "Rainy afternoons are perfect for slow cooking. Start a pot of soup with onions, carrots and celery, "
        "let it simmer while you read a chapter of a good novel, then add herbs at the end. "
        "A warm drink and a blanket finish the picture nicely."
    )
    for size in SIZES:
        guard = StreamGuard([], "redact", detect=detect)
        for piece in pieces(reply, size):
            guard.feed(piece)
            held = guard.raw[len(guard.shown) :]
            assert guard.held == len(held)
            # three complete words, and the one being written
            assert len(held.split()) <= 4, held
        assert len(guard.raw) - len(guard.shown) <= len(" a blanket finish the picture nicely.")
        rest, outcome = guard.finish()
        assert guard.shown == outcome.text == reply
        assert guard.detections == 0
    assert calls == [reply] * len(SIZES)  # finish's whole-reply check only


def test_a_held_stretch_waits_for_the_end_of_its_sentence() -> None:
    guard = StreamGuard([], "redact")
    out = ""
    for piece in pieces("Call me on +44 20 7946 0958 or later today", 3):
        out += guard.feed(piece)
    assert out == ""  # "Call me on" is held with its number, and the sentence has not ended
    out += guard.feed(". Thanks")
    assert out == "Call me on [phone] or later today. "
    assert guard.detections == 1


def test_a_street_name_before_its_number_is_held_with_it() -> None:
    guard = StreamGuard([], "redact")
    reply = "Please deliver everything to our friends at Via della Conciliazione 3, Roma. Thank you so much."
    out = stream(guard, reply, 2, ["Via della Conciliazione 3"])
    rest, outcome = guard.finish()
    assert (
        out + rest == outcome.text == "Please deliver everything to our friends at [address], Roma. Thank you so much."
    )


def test_a_finding_that_began_in_released_text_is_masked_from_where_it_is_held() -> None:
    # five words of street name before the number: the first ones were out before the number came
    reply = "We met at Piazza della Santissima Annunziata Vecchia 3 yesterday. Bye now, friend."
    guard = StreamGuard([], "redact")
    out = stream(guard, reply, 3, ["Santissima", "Annunziata", "Vecchia 3"])
    rest, outcome = guard.finish()
    assert outcome.text == "We met at [address] yesterday. Bye now, friend."
    assert guard.diverged
    assert out.startswith("We met at Piazza") and "[address]" in out  # the name's first word was out already
    # the rest continues from where the stream was, never repeating what was printed
    assert (out + rest).endswith(" yesterday. Bye now, friend.")


def test_shown_offset_maps_raw_offsets_onto_the_masked_text() -> None:
    reply = "Write to bob.jones@example.org or ring +44 20 7946 0958 today."
    guard = StreamGuard([], "redact")
    guard.feed(reply)
    _, outcome = guard.finish()
    assert outcome.text == "Write to [email] or ring [phone] today."
    raw_at = reply.index
    shown_at = outcome.text.index
    assert shown_offset(outcome, 0) == 0
    assert shown_offset(outcome, raw_at("bob")) == shown_at("[email]")
    assert shown_offset(outcome, raw_at("jones")) == shown_at("[email]")  # inside a masked value: its placeholder
    assert shown_offset(outcome, raw_at(" or ring")) == shown_at(" or ring")
    assert shown_offset(outcome, raw_at("20 7946")) == shown_at("[phone]")
    assert shown_offset(outcome, raw_at(" today")) == shown_at(" today")
    assert shown_offset(outcome, len(reply)) == len(outcome.text)
    # a value the user typed is shown as it is: offsets after it do not move
    guard = StreamGuard(["bob.jones@example.org"], "redact")
    guard.feed(reply)
    _, outcome = guard.finish()
    assert shown_offset(outcome, raw_at(" today")) == outcome.text.index(" today")


def test_a_very_long_reply_costs_linear_work() -> None:
    calls: list[int] = []

    def detect(text: str) -> list[Finding]:
        calls.append(len(text))
        return find_pii(text)

    prose = (
        "Long walks along the river are a good way to clear the mind after a busy week, and the light in the "
        "evening makes the water glow. "
    )
    sentence = "Send the notes to bob.jones@example.org before 10 tomorrow. "
    block = prose * 14 + sentence
    reply = (block * (200_000 // len(block) + 1))[:200_000]
    guard = StreamGuard([], "redact", detect=detect)
    for piece in pieces(reply, 5):
        guard.feed(piece)
        assert guard.held < 2_000
    rest, outcome = guard.finish()
    assert guard.shown == outcome.text
    assert "bob.jones" not in outcome.text and outcome.text.count("[email]") == reply.count("bob.jones@")
    streamed = calls[:-1]
    assert calls[-1] == len(reply)  # finish: one check of the whole reply
    assert len(streamed) == guard.detections <= reply.count("bob.jones@") + 1
    assert sum(streamed) <= 2 * reply.count("bob.jones@") * (len(sentence) + 200)  # each window: a sentence + context


def test_a_trigger_with_no_break_in_sight_is_released_at_a_word_boundary() -> None:
    reply = "Numbers to try: " + ", ".join(str(n) for n in range(1, 1500)) + " and bob.jones@example.org too."
    guard = StreamGuard([], "redact")
    most = 0
    for piece in pieces(reply, 4):
        guard.feed(piece)
        most = max(most, guard.held)
    rest, outcome = guard.finish()
    assert guard.shown == outcome.text and "[email]" in outcome.text
    assert 2_000 < most < 2_100  # held to the limit (counted from the trigger), then released; never more
    assert guard.detections >= len(reply) // 2_100


def test_an_endless_private_key_is_shown_as_one_placeholder() -> None:
    body = "\n".join("MIIEowIBAAKCAQEA1c7+9z5Pad7OejecsQ0bu3aumHXhq8Zr4mK2LwS0tGg9yVb1" for _ in range(400))
    reply = f"Here it is:\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\nKeep it safe."
    guard = StreamGuard([], "redact")
    out = stream(guard, reply, 5, ["MIIEowIBAAKCAQEA1c7"])
    assert guard.held < 100  # the key was not kept whole: once too long, it was dropped as it came
    rest, outcome = guard.finish()
    assert out + rest == outcome.text == "Here it is:\n[secret]\nKeep it safe."
    assert not guard.diverged


@pytest.mark.parametrize("policy", ["redact", "warn"])
def test_the_privacy_evaluation_set_streamed_never_leaks_and_ends_as_stored(policy: str) -> None:
    """The checker's labelled set (personal data in several countries' formats, secrets in code, config and prose,
    hard negatives), four items to a reply, every piece size from 1 to 7 in turn."""
    from bench.check_privacy_data import build

    texts = [item.text for item in build(per_type=20)]
    separators = [" ", "\n", "  ", ". "]
    for k in range(0, len(texts), 4):
        reply = separators[k % 4].join(texts[k : k + 4])
        typed = [texts[k]]  # the first item's data typed by the user: shown back
        guard = StreamGuard(typed, policy)  # type: ignore[arg-type]
        out = ""
        for piece in pieces(reply, 1 + k % 7):
            out += guard.feed(piece)
        rest, outcome = guard.finish()
        masked = [f.text for f, a in zip(outcome.findings, outcome.actions, strict=True) if a == "masked"]
        assert not [value for value in masked if value in out], reply
        assert outcome.text.startswith(out) and out + rest == outcome.text == guard.shown, reply
        assert not guard.diverged
