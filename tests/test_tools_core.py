"""A tool's schema from its signature and docstring, argument checking, and running it in isolation."""

from __future__ import annotations

import json
import threading
from typing import Any, Literal

import pytest

from assistant.errors import InputError, NotFoundError
from assistant.tools.core import MAX_RESULT_CHARS, Tool, coerce_arguments, parse_docstring, run_tool, tool
from assistant.tools.registry import Tools


@tool
def plan(
    city: str,
    days: int,
    budget: float = 100.0,
    mode: Literal["train", "car"] = "train",
    stops: list[str] | None = None,
    late: bool = False,
) -> dict[str, Any]:
    """Plan a trip.

    This paragraph is not part of the description.

    Args:
        city: Where to go,
            written in full.
        days (int): How long.
        mode: How to travel.

    Returns:
        The plan.
    """
    return {"city": city, "days": days, "budget": budget, "mode": mode, "stops": stops, "late": late}


def test_schema_from_signature_and_docstring() -> None:
    assert plan.name == "plan" and plan.description == "Plan a trip." and not plan.side_effects
    params = plan.parameters
    assert params["required"] == ["city", "days"]
    props = params["properties"]
    assert props["city"] == {"type": "string", "description": "Where to go, written in full."}
    assert props["days"] == {"type": "integer", "description": "How long."}
    assert props["budget"] == {"type": "number", "default": 100.0}
    assert props["mode"] == {
        "enum": ["train", "car"],
        "type": "string",
        "description": "How to travel.",
        "default": "train",
    }
    assert props["stops"] == {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}
    assert props["late"] == {"type": "boolean", "default": False}
    assert plan.schema() == {
        "type": "function",
        "function": {"name": "plan", "description": "Plan a trip.", "parameters": params},
    }
    json.dumps(plan.schema())  # what chat templates get must be JSON


def test_decorator_options_and_plain_call() -> None:
    @tool(name="say_hi", side_effects=True, timeout=2)
    def hello(who: str) -> str:
        """Greet."""
        return f"hi {who}"

    assert isinstance(hello, Tool) and hello.name == "say_hi" and hello.side_effects and hello.timeout == 2.0
    assert hello("Ada") == "hi Ada"  # still callable as the function it was


@pytest.mark.parametrize(
    ("define", "words"),
    [
        ("def f(x): return x", "parameter 'x' has no type hint"),
        ("def f(x: dict) -> str: return ''", "the type dict is not supported"),
        ("def f(x: int | str) -> str: return ''", "a union other than 'X | None'"),
        ("def f(*xs: int) -> str: return ''", "*args"),
        ("def f(x: list[dict]) -> str: return ''", "lists must be"),
        ("def Bad() -> str: return ''", "the tool name 'Bad' is not valid"),
    ],
)
def test_unsupported_signatures_raise_type_error(define: str, words: str) -> None:
    scope: dict[str, Any] = {}
    exec(define, scope)
    with pytest.raises(TypeError, match=words.replace("*", r"\*").replace("|", r"\|").replace("(", r"\(")):
        tool(scope["f" if "def f" in define else "Bad"])


def test_docstring_without_args_section() -> None:
    assert parse_docstring("One line.") == ("One line.", {})
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("Two\nlines.\n\nMore.") == ("Two lines.", {})


def test_arguments_are_coerced_from_text() -> None:
    got = coerce_arguments(
        plan, {"city": "Oslo", "days": "3", "budget": "12.5", "stops": "Bergen, Voss", "late": "yes"}
    )
    assert got == {"city": "Oslo", "days": 3, "budget": 12.5, "stops": ["Bergen", "Voss"], "late": True}
    assert coerce_arguments(plan, {"city": "Oslo", "days": 3.0, "stops": '["a b"]'})["stops"] == ["a b"]
    assert coerce_arguments(plan, {"city": "Oslo", "days": 3, "stops": None})["stops"] is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"city": "Oslo"}, "The tool plan needs the parameter 'days' (a whole number); give it as days=VALUE."),
        (
            {"city": "Oslo", "days": "three"},
            "The parameter 'days' of the tool plan must be a whole number, not 'three'.",
        ),
        ({"city": "Oslo", "days": True}, "The parameter 'days' of the tool plan must be a whole number, not 'true'."),
        ({"city": "Oslo", "days": 1, "mode": "boat"}, "must be one of 'train', 'car', not 'boat'."),
        ({"city": "Oslo", "days": 1, "late": "maybe"}, "must be true or false, not 'maybe'."),
        ({"city": "Oslo", "days": 1, "budget": "nan"}, "must be a number, not 'nan'."),
        ({"city": "Oslo", "days": 1, "weather": "sun"}, "The tool plan has no parameter 'weather'"),
    ],
)
def test_malformed_arguments_are_one_sentence(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        coerce_arguments(plan, arguments)
    assert message in str(caught.value) and str(caught.value).endswith(".")
    assert caught.value.exit_code == 2


def test_run_tool_isolates_exceptions_and_exit() -> None:
    @tool
    def leave() -> str:
        """Exit the process."""
        raise SystemExit(4)

    result = run_tool(leave, {})
    assert not result.ok and result.error == "The tool leave failed: SystemExit: 4."


def test_run_tool_hang_is_bounded_by_the_timeout() -> None:
    release = threading.Event()
    finished = threading.Event()

    @tool(timeout=0.05)
    def stuck() -> str:
        """Wait."""
        release.wait()
        finished.set()
        return "late"

    result = run_tool(stuck, {})
    assert not result.ok and result.error is not None and "did not finish within 0.05 s" in result.error
    release.set()
    assert finished.wait(30)  # the daemon thread ends once released; nothing leaks past the test


@pytest.mark.parametrize(
    ("value", "content"),
    [("text", "text"), (3, "3"), (2.5, "2.5"), (True, "true"), ([1, "é"], '[1, "é"]'), ({"a": None}, '{"a": null}')],
)
def test_results_become_text(value: Any, content: str) -> None:
    @tool
    def give() -> Any:
        """Give."""
        return value

    result = run_tool(give, {})
    assert result.ok and result.content == content and result.error is None


@pytest.mark.parametrize("value", [b"bytes", bytearray(b"x"), object(), {1, 2}, float("nan"), {"a": b"x"}])
def test_garbage_results_are_refused(value: Any) -> None:
    @tool
    def give() -> Any:
        """Give."""
        return value

    result = run_tool(give, {})
    assert not result.ok and result.error is not None and result.error.startswith("The tool give returned something")


def test_long_results_are_cut_and_marked() -> None:
    @tool
    def long() -> str:
        """Long."""
        return "x" * (MAX_RESULT_CHARS * 3)

    result = run_tool(long, {})
    assert result.ok and len(result.content) <= MAX_RESULT_CHARS and "cut:" in result.content[-60:]


def test_registry_get_parse_and_call() -> None:
    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    tools = Tools([plan, echo])
    assert [t.name for t in tools.list()] == ["echo", "plan"]
    with pytest.raises(NotFoundError, match="There is no tool nope; `assistant tools list` shows them."):
        tools.get("nope")
    assert tools.parse_text("echo", "hello there, world") == {"text": "hello there, world"}
    assert tools.parse_text("echo", "text='a b'") == {"text": "a b"}
    assert tools.parse_text("plan", "city='New York' days=2") == {"city": "New York", "days": 2}
    assert tools.parse_pairs("plan", ["city=a=b", "days=1"]) == {"city": "a=b", "days": 1}
    with pytest.raises(InputError, match="is not key=value"):
        tools.parse_text("plan", "Oslo 3")
    result = tools.call("plan", {"city": "Oslo", "days": "2"})
    assert result.ok and json.loads(result.content)["days"] == 2
    assert result.to_dict()["arguments"] == {"city": "Oslo", "days": 2}


class FakeSource:
    """A ToolSource that fails the first time (a server that cannot start) or gives one tool."""

    def __init__(self, name: str, fail: bool) -> None:
        self.name, self.fail, self.closed = name, fail, 0

    def tools(self) -> list[Tool]:
        if self.fail:
            raise RuntimeError("the server exited at start")

        @tool
        def remote_time() -> str:
            """The time."""
            return "12:00"

        return [remote_time]

    def close(self) -> None:
        self.closed += 1


def test_sources_start_lazily_and_failures_are_reported() -> None:
    good, bad = FakeSource("mcp:good", False), FakeSource("mcp:bad", True)
    tools = Tools([], [], [good, bad])
    assert tools.names() == [] and tools.failures == []  # nothing started yet
    assert tools.call("remote_time", {}).content == "12:00"
    failed = tools.failures
    assert [f.name for f in failed] == ["mcp:bad"]
    assert failed[0].error == "The tool source mcp:bad failed: RuntimeError: the server exited at start."
    tools.close()
    assert good.closed == 1
