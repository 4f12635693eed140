"""A tool: a typed Python function whose signature and docstring become its JSON schema, run in isolation.

``@tool`` turns a function into a ``Tool``; ``run_tool`` calls one in a daemon worker thread under its timeout, so
a tool that raises, hangs or returns something that is not text or JSON gives one sentence, never a crash.
Arguments are checked against the JSON schema alone (``coerce_arguments``), so the same checks hold for tools that
come from an MCP server, which only have a schema.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import threading
import time
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from assistant.errors import AssistantError, InputError

MAX_RESULT_CHARS = 4000
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
DEFAULT_TIMEOUT = 10.0

_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the user or the model may call, with the JSON schema of its keyword arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    func: Callable[..., Any]
    side_effects: bool = False
    timeout: float = DEFAULT_TIMEOUT
    source: str = "builtin"

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function schema that chat templates render into the prompt."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # A decorated function stays callable as a plain function (handy in tests and in other tools).
        return self.func(*args, **kwargs)


@dataclass(slots=True)
class ToolResult:
    """What one call of a tool gave: text for the user and the model, or one sentence saying why not."""

    tool: str
    arguments: dict[str, Any]
    ok: bool
    content: str
    error: str | None = None
    seconds: float = 0.0
    source: str = "builtin"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "arguments": self.arguments,
            "ok": self.ok,
            "content": self.content,
            "error": self.error,
            "seconds": round(self.seconds, 4),
            "source": self.source,
        }


# ---------------------------------------------------------------------------------------------------------------
# Schema from a signature


def _hint_schema(hint: Any, where: str) -> tuple[dict[str, Any], bool]:
    """The JSON schema of one type hint, and whether it admits None."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return _hint_schema(rest[0], where)[0], True
        raise TypeError(f"{where}: a union other than 'X | None' is not supported")
    if origin is Literal:
        if not args or not all(isinstance(a, str | int | float | bool) for a in args):
            raise TypeError(f"{where}: Literal values must be strings, numbers or booleans")
        first = type(args[0])
        schema: dict[str, Any] = {"enum": list(args)}
        if all(type(a) is first for a in args):
            schema["type"] = _SIMPLE[first]
        return schema, False
    if origin is list:
        if len(args) != 1 or args[0] not in _SIMPLE:
            raise TypeError(f"{where}: lists must be list[str], list[int], list[float] or list[bool]")
        return {"type": "array", "items": {"type": _SIMPLE[args[0]]}}, False
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}, False
    raise TypeError(
        f"{where}: the type {getattr(hint, '__name__', hint)!s} is not supported "
        "(use str, int, float, bool, list[...], Literal[...] or X | None)"
    )


_ARG_LINE = re.compile(r"^\s*(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?)\s*:\s*$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The description (the first paragraph) and each parameter's text from a Google-style "Args:" section."""
    text = inspect.cleandoc(doc or "")
    lines = text.splitlines()
    first: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line):
            break
        first.append(line.strip())
    params: dict[str, str] = {}
    in_args = False
    current: str | None = None
    indent = 0
    for line in lines:
        section = _SECTION.match(line)
        if section:
            in_args = section.group(1) in ("Args", "Arguments", "Parameters")
            current = None
            continue
        if not in_args or not line.strip():
            continue
        this_indent = len(line) - len(line.lstrip())
        match = _ARG_LINE.match(line)
        if match and (current is None or this_indent <= indent):
            current = match.group(1).lstrip("*")
            indent = this_indent
            params[current] = match.group(3).strip()
        elif current is not None:
            params[current] = f"{params[current]} {line.strip()}".strip()
    return " ".join(first), params


def _function_schema(func: Callable[..., Any], name: str) -> tuple[str, dict[str, Any]]:
    description, docs = parse_docstring(func.__doc__)
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:  # a forward reference that does not resolve
        raise TypeError(f"the tool {name}'s type hints cannot be read: {exc}") from exc
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(func).parameters.values():
        where = f"the tool {name}'s parameter '{param.name}'"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(f"{where}: *args, **kwargs and positional-only parameters are not supported")
        if param.name not in hints:
            raise TypeError(f"{where} has no type hint")
        schema, nullable = _hint_schema(hints[param.name], where)
        if param.name in docs:
            schema["description"] = docs[param.name]
        if param.default is inspect.Parameter.empty:
            if not nullable:
                required.append(param.name)
        elif param.default is not None:
            try:
                json.dumps(param.default)
            except (TypeError, ValueError):
                raise TypeError(f"{where}: its default is not a JSON value") from None
            schema["default"] = param.default
        if nullable:
            schema = {"anyOf": [schema, {"type": "null"}]} | {
                k: schema.pop(k) for k in ("description", "default") if k in schema
            }
        properties[param.name] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    return description, parameters


def make_tool(
    func: Callable[..., Any],
    *,
    name: str | None = None,
    side_effects: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    source: str = "builtin",
) -> Tool:
    """Build a Tool from a typed function; ``TypeError`` (one sentence) when its signature cannot be a schema."""
    if isinstance(func, Tool):
        return func
    if not callable(func):
        raise TypeError(f"a tool must be a function, not {type(func).__name__}")
    tool_name = name or getattr(func, "__name__", "")
    if not isinstance(tool_name, str) or not NAME_PATTERN.match(tool_name):
        raise TypeError(
            f"the tool name {tool_name!r} is not valid (lower-case letters, digits and _, starting with a letter, "
            "at most 64 characters)"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
        raise TypeError(f"the tool {tool_name}'s timeout must be a number of seconds between 0 and 3600")
    description, parameters = _function_schema(func, tool_name)
    return Tool(
        name=tool_name,
        description=description,
        parameters=parameters,
        func=func,
        side_effects=bool(side_effects),
        timeout=float(timeout),
        source=source,
    )


@typing.overload
def tool(func: Callable[..., Any], /) -> Tool: ...
@typing.overload
def tool(
    func: None = None, /, *, name: str | None = None, side_effects: bool = False, timeout: float = DEFAULT_TIMEOUT
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    side_effects: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a tool of a typed function: ``@tool``, ``@tool(side_effects=True, timeout=5)`` or ``tool(func)``."""
    if func is not None:
        return make_tool(func, name=name, side_effects=side_effects, timeout=timeout)

    def wrap(f: Callable[..., Any]) -> Tool:
        return make_tool(f, name=name, side_effects=side_effects, timeout=timeout)

    return wrap


# ---------------------------------------------------------------------------------------------------------------
# Arguments checked against the schema

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _type_words(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(_type_words({"type": k}) for k in kind)
    if kind == "array":
        return f"a list of {_type_words(schema.get('items') or {}).removeprefix('a ').removeprefix('an ')}s"
    return {
        "string": "a text",
        "integer": "a whole number",
        "number": "a number",
        "boolean": "true or false",
        "object": "a JSON object",
        "null": "null",
    }.get(str(kind), "a value")


class _Bad(Exception):
    pass


def _coerce(value: Any, schema: dict[str, Any]) -> Any:
    """One value converted to what the schema asks (text from the CLI becomes numbers, lists ...); _Bad if not."""
    for key in ("anyOf", "oneOf"):
        if key in schema:
            for option in schema[key]:
                try:
                    return _coerce(value, option)
                except _Bad:
                    continue
            raise _Bad
    if "enum" in schema:
        choices = schema["enum"]
        if value in choices and not (isinstance(value, bool) and not any(isinstance(c, bool) for c in choices)):
            return value
        if isinstance(value, str):
            for choice in choices:
                if not isinstance(choice, str) and value.strip().lower() == json.dumps(choice):
                    return choice
        raise _Bad
    kind = schema.get("type")
    if isinstance(kind, list):
        return _coerce(value, {"anyOf": [dict(schema, type=k) for k in kind]})
    if kind == "null":
        if value is None:
            return None
        raise _Bad
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise _Bad
    if kind == "integer":
        if isinstance(value, bool):
            raise _Bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return int(value)
        raise _Bad
    if kind == "number":
        if isinstance(value, bool):
            raise _Bad
        if isinstance(value, int | float) and math.isfinite(value):
            return value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise _Bad from None
            if math.isfinite(number):
                return int(number) if number.is_integer() and re.fullmatch(r"\s*[-+]?\d+\s*", value) else number
        raise _Bad
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _Bad
    if kind == "array":
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError:
                    raise _Bad from None
            else:
                value = [part.strip() for part in text.split(",")] if text else []
        if not isinstance(value, list | tuple):
            raise _Bad
        items = schema.get("items") or {}
        return [_coerce(item, items) for item in value]
    if kind == "object":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise _Bad from None
        if not isinstance(value, dict):
            raise _Bad
        return value
    return value  # no type given: anything JSON


def coerce_arguments(tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments checked and converted against the tool's schema; InputError (one sentence) when malformed."""
    if not isinstance(arguments, dict):
        raise InputError(f"The arguments of the tool {tool.name} must be key=value pairs (a JSON object).")
    properties: dict[str, Any] = tool.parameters.get("properties") or {}
    required: list[str] = list(tool.parameters.get("required") or [])
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        takes = ", ".join(properties) or "no parameters"
        raise InputError(f"The tool {tool.name} has no parameter '{unknown[0]}'; it takes: {takes}.")
    missing = [name for name in required if name not in arguments]
    if missing:
        schema = properties.get(missing[0]) or {}
        raise InputError(
            f"The tool {tool.name} needs the parameter '{missing[0]}' ({_type_words(schema)}); "
            f"give it as {missing[0]}=VALUE."
        )
    checked: dict[str, Any] = {}
    for name, value in arguments.items():
        schema = properties[name] or {}
        try:
            checked[name] = _coerce(value, schema)
        except _Bad:
            expected = _type_words(schema)
            if "anyOf" in schema:
                expected = " or ".join(_type_words(option) for option in schema["anyOf"])
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
            raise InputError(
                f"The parameter '{name}' of the tool {tool.name} must be {expected}, not {str(shown)[:60]!r}."
            ) from None
    return checked


# ---------------------------------------------------------------------------------------------------------------
# Running a tool in isolation


def one_sentence(text: str, limit: int = 300) -> str:
    """A message squeezed onto one line and cut short, so a plugin's error never floods the screen."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def result_text(value: Any) -> str:
    """A tool's return value as text; ``TypeError`` when it is not text, a number, a boolean, a list or a dict
    (or holds something JSON cannot write)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | list | dict) and not isinstance(value, bytes | bytearray):
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"it holds something that is not JSON ({one_sentence(str(exc), 80)})") from None
    raise TypeError(f"it is a {type(value).__name__}, not text, a number, a list or a dict")


def cut(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    """Text cut to ``limit`` characters, marked so the reader knows there was more."""
    if len(text) <= limit:
        return text
    note = f"\n[… cut: {len(text) - limit + 40:,} more characters]"
    return text[: max(0, limit - len(note))] + note


def run_tool(tool: Tool, arguments: dict[str, Any]) -> ToolResult:
    """Call the tool with already checked arguments in a daemon worker thread, waiting at most its timeout.

    Never raises for the tool's own failures: an exception, a hang or a result that is not text/JSON becomes
    ``ok=False`` with one sentence. A hung thread cannot be killed in Python; it is a daemon, so it never keeps
    the process alive, and its late result is dropped.
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["value"] = tool.func(**arguments)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: a tool must not end the assistant
            outcome["error"] = exc
        finally:
            done.set()

    started = time.perf_counter()
    worker = threading.Thread(target=work, name=f"tool-{tool.name}", daemon=True)
    worker.start()
    finished = done.wait(tool.timeout)
    seconds = time.perf_counter() - started

    def failed(error: str) -> ToolResult:
        return ToolResult(tool.name, dict(arguments), False, "", one_sentence(error), seconds, tool.source)

    if not finished:
        return failed(
            f"The tool {tool.name} did not finish within {tool.timeout:g} s; it was given up on and a late result "
            "will be ignored."
        )
    if "error" in outcome:
        exc = outcome["error"]
        if isinstance(exc, AssistantError):
            return failed(str(exc))
        detail = str(exc).strip()
        return failed(f"The tool {tool.name} failed: {type(exc).__name__}{': ' + detail if detail else ''}.")
    try:
        text = result_text(outcome.get("value"))
    except TypeError as exc:
        return failed(f"The tool {tool.name} returned something unusable: {exc}.")
    return ToolResult(tool.name, dict(arguments), True, cut(text), None, seconds, tool.source)


__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_RESULT_CHARS",
    "Tool",
    "ToolResult",
    "coerce_arguments",
    "cut",
    "make_tool",
    "one_sentence",
    "parse_docstring",
    "result_text",
    "run_tool",
    "tool",
]
