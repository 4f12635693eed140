"""Question/answer synthesis: what the user said about themselves, turned into questions a model can learn to
answer. Rule-based and deterministic: a model only answers questions it was trained to answer, and users mostly
mention facts in passing ("I walked my dog Rex"), so each statement becomes a few paraphrased second-person
questions with one answer ("What is my dog's name?" / "What's my dog called?" -> "Your dog is called Rex.").

:func:`learning.said.extract` finds what a statement says, as ``(family, slot, value)`` triples;
:data:`FAMILIES` holds each family's question and answer templates. The families:

=========  ===================================================  ======================================
family     said                                                 asked
=========  ===================================================  ======================================
name       my dog Rex / my sister is called Ana / Ana is my     What is my dog's name? Who is my sister?
           sister / I have a cat named Miso / my cats A and B
who        (the same statements, the other way round)           Who is Rex?
myname     my name is Sam / call me Sam                         What is my name?
place      I live in / I'm from / I grew up in / I work at /    Where do I live? Where do I work?
           I study at / I moved to / I was born in Porto
job        I work as a nurse / I'm a software engineer /        What do I do for a living?
           my job is ...
likes      I love / like / enjoy / I'm a fan of / I'm into      What do I like?
dislikes   I hate / dislike / can't stand / don't like          What don't I like?
favourite  my favourite colour is green                         What is my favourite colour?
date       my birthday is 14 March / I was born on ... /        When is my birthday? When was I born?
           my sister's birthday is ... / our anniversary is
age        I am 34 / I'm 34 years old / my son is 7             How old am I? How old is my son?
count      I have two cats / I have 3 kids                      How many cats do I have?
state      I'm allergic to peanuts / afraid of / married to /   What am I allergic to?
           learning Spanish / training for a marathon
trait      I am vegetarian / left-handed / retired (a list)     What kind of person am I?
activity   I play the guitar / I speak Portuguese / I drive     What do I play? What do I speak?
about      my car is a red Volvo ("my X is Y", a name or a      What do you know about my car?
           number in Y; only when nothing else matched)
=========  ===================================================  ======================================

Answers are in the second person ("my" -> "your"). Families marked multi-valued (likes, dislikes, trait, activity
per verb, names of relations one can have several of) merge their values into one answer, so "What do I like?"
is never trained towards two different answers; single-valued ones keep the latest value ("I moved to Porto"
after "I live in Lisbon"). Each family has at least three questions so one can be held out as a probe.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from learning.said import (
    MONTH_ALIASES,
    NUMBER_WORDS,
    ONLY_ONE,
    PET_WORDS,
    is_plural,
    pluralise,
    second_person,
    split_names,
)


@dataclass(slots=True, frozen=True)
class Family:
    questions: Callable[[str], list[str]]  # slot -> paraphrased questions
    answers: Callable[[str, str], list[str]]  # slot, value(s) in the second person -> answer phrasings
    multi: Callable[[str], bool] = lambda slot: False  # whether values merge (else the latest wins)


def _name_questions(rel: str) -> list[str]:
    if is_plural(rel):
        return [
            f"What are my {rel} called?",
            f"What are the names of my {rel}?",
            f"What are my {rel}' names?",
            f"Do you remember what my {rel} are called?",
        ]
    out = [
        f"What is my {rel}'s name?",
        f"What's my {rel} called?",
        f"What is the name of my {rel}?",
        f"Do you remember my {rel}'s name?",
    ]
    if rel not in PET_WORDS:
        out.append(f"Who is my {rel}?")
    return out


def _name_answers(rel: str, names: str) -> list[str]:
    many = is_plural(rel) or " and " in names
    if many:
        rels = rel if is_plural(rel) else pluralise(rel)
        return [f"Your {rels} are called {names}.", f"Your {rels}' names are {names}."]
    return [f"Your {rel} is called {names}.", f"Your {rel}'s name is {names}.", f"{names} is your {rel}."]


_PLACE_QUESTIONS = {
    "live": ["Where do I live?", "Which city do I live in?", "Where is my home?", "Do you know where I live?",
             "Where am I living these days?"],
    "from": ["Where am I from?", "Where do I come from?", "Where was I originally from?", "What is my hometown?"],
    "grew up": ["Where did I grow up?", "Where did I spend my childhood?", "Which place did I grow up in?"],
    "born": ["Where was I born?", "What is my birthplace?", "In which place was I born?"],
    "work": ["Where do I work?", "Who is my employer?", "Which company do I work for?", "Where is my workplace?"],
    "study": ["Where do I study?", "Which school do I go to?", "Where am I a student?", "Where am I studying?"],
}  # fmt: skip
_PLACE_ANSWERS = {
    "live": ["You live in {v}.", "Your home is in {v}."],
    "from": ["You are from {v}.", "You come from {v}."],
    "grew up": ["You grew up in {v}.", "You spent your childhood in {v}."],
    "born": ["You were born in {v}.", "Your birthplace is {v}."],
    "work": ["You work at {v}.", "Your workplace is {v}."],
    "study": ["You study at {v}.", "You are a student at {v}."],
}
_DATE_QUESTIONS = {
    "my birthday": ["When is my birthday?", "What day is my birthday?", "When was I born?",
                    "What is my date of birth?", "When do I celebrate my birthday?"],
    "born": ["When was I born?", "What year was I born in?", "In which year was I born?"],
    "our anniversary": ["When is our anniversary?", "What date is our anniversary?",
                        "When do we celebrate our anniversary?"],
}  # fmt: skip


def _date_questions(slot: str) -> list[str]:
    if slot in _DATE_QUESTIONS:
        return _DATE_QUESTIONS[slot]
    return [f"When is {slot}?", f"What day is {slot}?", f"What is the date of {slot}?", f"Do you remember {slot}?"]


def _date_answers(slot: str, value: str) -> list[str]:
    if slot == "born":
        return [f"You were born in {value}.", f"Your birth year is {value}."]
    if slot == "my birthday":
        return [f"Your birthday is on {value}.", f"You were born on {value}."]
    whose = second_person(slot)
    return [f"{whose[:1].upper()}{whose[1:]} is on {value}.", f"It is on {value}."]


def _what(state: str) -> str:
    return "Who" if state.startswith(("married", "engaged")) else "What"


def _age_questions(slot: str) -> list[str]:
    if slot == "":
        return ["How old am I?", "What is my age?", "What age am I?", "Do you know how old I am?"]
    return [f"How old is my {slot}?", f"What is my {slot}'s age?", f"What age is my {slot}?"]


def _age_answers(slot: str, value: str) -> list[str]:
    if slot == "":
        return [f"You are {value} years old.", f"You're {value}."]
    return [f"Your {slot} is {value} years old.", f"Your {slot} is {value}."]


FAMILIES: dict[str, Family] = {
    "name": Family(
        _name_questions,
        _name_answers,
        multi=lambda rel: rel not in ONLY_ONE,
    ),
    "myname": Family(
        lambda _: ["What is my name?", "What's my name?", "Do you know my name?", "What should you call me?"],
        lambda _, v: [f"Your name is {v}.", f"You are {v}."],
    ),
    "who": Family(
        lambda name: [f"Who is {name}?", f"Who's {name}?", f"Do you know who {name} is?", f"Tell me who {name} is."],
        lambda name, rel: [f"{name} is your {rel}.", f"{name} is your {rel}, as you told me."],
    ),
    "place": Family(lambda slot: _PLACE_QUESTIONS[slot], lambda slot, v: [a.format(v=v) for a in _PLACE_ANSWERS[slot]]),
    "job": Family(
        lambda _: [
            "What do I do for a living?",
            "What is my job?",
            "What's my profession?",
            "What work do I do?",
            "What is my occupation?",
        ],
        lambda _, v: [f"You are {v}.", f"You work as {v}."],
    ),  # fmt: skip
    "likes": Family(
        lambda _: [
            "What do I like?",
            "What do I enjoy?",
            "What am I fond of?",
            "Name something I love.",
            "What are some things I like?",
        ],
        lambda _, v: [f"You like {v}.", f"You enjoy {v}."],
        multi=lambda _: True,
    ),  # fmt: skip
    "dislikes": Family(
        lambda _: ["What do I dislike?", "What don't I like?", "What do I hate?", "Is there something I can't stand?"],
        lambda _, v: [f"You don't like {v}.", f"You dislike {v}."],
        multi=lambda _: True,
    ),
    "favourite": Family(
        lambda s: [
            f"What is my favourite {s}?",
            f"What's my favorite {s}?",
            f"Which {s} do I like best?",
            f"Do you know my favourite {s}?",
        ],
        lambda s, v: [f"Your favourite {s} is {v}.", f"{v[:1].upper()}{v[1:]} is your favourite {s}."],
    ),  # fmt: skip
    "date": Family(_date_questions, _date_answers),
    "age": Family(_age_questions, _age_answers),
    "count": Family(
        lambda s: [f"How many {s} do I have?", f"How many {s} have I got?", f"What is the number of {s} I have?"],
        lambda s, v: [f"You have {v} {s}.", f"You've got {v} {s}."],
    ),
    "state": Family(
        lambda s: [
            f"{_what(s)} am I {s}?",
            f"Do you remember {_what(s).lower()} I'm {s}?",
            f"{_what(s)} did I tell you I'm {s}?",
        ],
        lambda s, v: [f"You are {s} {v}.", f"You're {s} {v}."],
        multi=lambda _: True,
    ),
    "trait": Family(
        lambda _: ["What kind of person am I?", "Describe me in a few words.", "Tell me what you know about me."],
        lambda _, v: [f"You are {v}.", f"You told me you are {v}."],
        multi=lambda _: True,
    ),
    "activity": Family(
        lambda verb: [f"What do I {verb}?", f"Do you remember what I {verb}?", f"Tell me what I {verb}."],
        lambda verb, v: [f"You {verb} {v}.", f"You told me you {verb} {v}."],
        multi=lambda _: True,
    ),
    "about": Family(
        lambda s: [
            f"What do you know about my {s}?",
            f"Tell me about my {s}.",
            f"What did I tell you about my {s}?",
            f"Do you remember anything about my {s}?",
        ],
        lambda s, v: [f"Your {s} {v}.", f"You told me your {s} {v}."],
    ),  # fmt: skip
}


def join_values(values: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    if len(values) <= 1:
        return "".join(values)
    return ", ".join(values[:-1]) + " and " + values[-1]


# -- what a probe's answer must contain -----------------------------------------------------------------------------

_STOP = frozenset(
    """a an the my your our of in on at to for and or with from by is are was were be am i you me some very really
    much many lot lots also just too""".split()
)


def keywords(family: str, slot: str, value: str) -> list[str]:
    """The words an answer about this value must contain to count as right (at most three)."""
    if family == "date":
        month = next((m for k, m in MONTH_ALIASES.items() if re.search(rf"\b{k}\b", value.lower())), None)
        day = re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?\b", re.sub(r"\b\d{4}\b", "", value))
        year = re.search(r"\b(\d{4})\b", value)
        parts = [p for p in (day.group(1) if day else None, month) if p]
        if year and not day:
            parts.append(year.group(1))
        return parts or [value]
    if family in ("age", "count"):
        return [value.split()[0]]
    if family == "who":
        return [value]
    if family == "name":
        return split_names(value)[:3]
    names = re.findall(r"\b[A-Z][\w'’-]*", value)
    if names:
        return names[:3]
    words = [w for w in re.findall(r"[\w'’-]+", value) if w.lower() not in _STOP]
    return words[-2:] if family == "job" else words[:2]


def number_forms(word: str) -> set[str]:
    """A number and its word form ("2", "two")."""
    lower = word.lower()
    if lower in NUMBER_WORDS:
        return {lower, str(NUMBER_WORDS[lower])}
    if lower.isdigit() and int(lower) in NUMBER_WORDS.values():
        return {lower, next(k for k, v in NUMBER_WORDS.items() if v == int(lower))}
    return {lower}


def answer_has(answer: str, expected: list[str]) -> bool:
    """Whether an answer contains every expected keyword (case aside, whole words; a number in figures or words)."""
    text = answer.casefold().replace("’", "'")
    for keyword in expected:
        forms = number_forms(keyword.casefold())
        if not any(re.search(rf"(?<!\w){re.escape(form)}(?!\w)", text) for form in forms):
            return False
    return True
