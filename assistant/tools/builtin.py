"""The built-in tools, registered through the same hook as any plugin: ``now``, ``calculate``, ``search_notes`` and
``remember``.

Their docstrings are what the model reads about them, so they stay short and exact. Failures are one sentence
(an ``InputError``), which the registry hands back as the call's error. Importing this module stays cheap: the
calculator, the time zones, the notes index and the store are imported when a tool runs, not when it registers.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from assistant.errors import InputError
from assistant.plugins import hookimpl
from assistant.tools.core import tool

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from assistant.plugins import PluginContext

SEARCH_TIMEOUT = 120.0  # the first search of a large folder embeds every note; later ones only what changed
MAX_ZONE_CHARS = 64
MAX_EXPRESSION_CHARS = 500
MAX_INT_BITS = 4000  # about 1,200 digits: any exact result past this is refused before it is computed
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_ZONE_ALIASES = {"utc": "UTC", "gmt": "UTC", "z": "UTC", "zulu": "UTC"}


# -------------------------------------------------------------------------------------------------------------
# now


def _utc_now() -> datetime:
    return datetime.now(UTC)


def find_zone(name: str) -> ZoneInfo:
    """An IANA time zone by name, forgiving case and a bare city ("tokyo" is Asia/Tokyo); InputError otherwise."""
    import difflib
    import zoneinfo

    wanted = name.strip()
    if len(wanted) > MAX_ZONE_CHARS:
        raise InputError(
            f"The time zone name is {len(wanted)} characters long; IANA names are short, e.g. Europe/Paris."
        )
    wanted = _ZONE_ALIASES.get(wanted.lower(), wanted)
    try:
        return zoneinfo.ZoneInfo(wanted)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass  # a path-like or odd name is refused by ZoneInfo with ValueError; both end in the sentence below
    keys = zoneinfo.available_timezones()
    folded = wanted.lower().replace(" ", "_")
    by_lower = {key.lower(): key for key in keys}
    city = [key for key in keys if key.lower().endswith("/" + folded)]
    match = by_lower.get(folded) or (city[0] if len(city) == 1 else None)
    if match:
        return zoneinfo.ZoneInfo(match)
    close = difflib.get_close_matches(folded, by_lower, n=1, cutoff=0.75)
    hint = f" (did you mean {by_lower[close[0]]}?)" if close else ""
    raise InputError(
        f"There is no time zone '{wanted}'{hint}; give an IANA name such as Europe/Paris or America/New_York."
    )


def now(timezone: str | None = None) -> str:
    """The current date, time and weekday, on this computer or in a given time zone.

    Args:
        timezone: An IANA time zone such as Europe/Paris or America/New_York; leave it out for local time.
    """
    instant = _utc_now()
    if timezone is None or not timezone.strip():
        moment, where = instant.astimezone(), "local time"
    else:
        zone = find_zone(timezone)
        moment, where = instant.astimezone(zone), f"in {zone.key}"
    offset = moment.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    day = f"{DAYS[moment.weekday()]}, {moment.day} {MONTHS[moment.month - 1]} {moment.year}"
    return (
        f"{day}, {moment:%H:%M:%S} {where} ({moment.tzname()}, {offset}); "
        f"ISO 8601: {moment.isoformat(timespec='seconds')}"
    )


# -------------------------------------------------------------------------------------------------------------
# calculate


class _TooLarge(ArithmeticError):
    pass


def _check(value: Any) -> Any:
    if isinstance(value, complex):
        raise ValueError("math domain error")  # e.g. (-8) ** 0.5: no real result
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _TooLarge
    if isinstance(value, float) and math.isinf(value):
        raise _TooLarge
    return value


def _power(a: Any, b: Any) -> Any:
    # Judged before computing: 9 ** 9 ** 9 would take the machine for minutes, then fail to print.
    if (
        isinstance(a, int)
        and isinstance(b, int)
        and b > 0
        and abs(a) > 1
        and b * (abs(a).bit_length() - 1) > MAX_INT_BITS
    ):
        raise _TooLarge
    return _check(a**b)


def _times(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
        raise _TooLarge
    return _check(a * b)


def _log(x: float, base: float | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _round(x: float, digits: int | None = None) -> float:
    return round(x) if digits is None else round(x, int(digits))


def _calculator() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    import operator

    from simpleeval import SimpleEval

    operators: dict[type, Callable[..., Any]] = {
        ast.Add: lambda a, b: _check(a + b),
        ast.Sub: lambda a, b: _check(a - b),
        ast.Mult: _times,
        ast.Div: lambda a, b: _check(operator.truediv(a, b)),
        ast.FloorDiv: lambda a, b: _check(operator.floordiv(a, b)),
        ast.Mod: lambda a, b: _check(operator.mod(a, b)),
        ast.Pow: _power,
        ast.USub: operator.neg,
        ast.UAdd: operator.pos,
    }
    functions: dict[str, Callable[..., Any]] = {
        "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin,
        "acos": math.acos, "atan": math.atan, "log": _log, "log10": math.log10, "log2": math.log2,
        "exp": math.exp, "floor": math.floor, "ceil": math.ceil, "round": _round, "abs": abs, "min": min,
        "max": max, "radians": math.radians, "degrees": math.degrees,
    }  # fmt: skip
    names = {"pi": math.pi, "e": math.e, "tau": math.tau}
    return SimpleEval(operators=operators, functions=functions, names=names), functions, names


_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Constant, ast.Load)
_NODE_WORDS = {
    "Attribute": "attribute access (a.b)",
    "Subscript": "indexing (a[b])",
    "Compare": "comparisons",
    "BoolOp": "and/or",
    "Lambda": "functions of your own",
    "IfExp": "if/else",
    "JoinedStr": "text",
    "List": "lists",
    "Tuple": "tuples",
    "Dict": "dictionaries",
    "Set": "sets",
    "ListComp": "comprehensions",
    "GeneratorExp": "comprehensions",
    "NamedExpr": "assignments",
    "Starred": "unpacking (*a)",
    "keyword": "keyword arguments",
}
_OPERATOR_TYPES = (ast.operator, ast.unaryop)
_ALLOWED_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd)


def _vet(tree: ast.Expression, functions: dict[str, Any], names: dict[str, Any]) -> None:
    """Refuse anything but numbers, the named constants, the functions and + - * / // % ** ^, with a reason."""
    calls = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, _OPERATOR_TYPES):
            if not isinstance(node, _ALLOWED_OPERATORS):
                raise InputError("Only + - * / // % ** (or ^) are allowed as operators in the calculator.")
            continue
        if not isinstance(node, _ALLOWED_NODES):
            what = _NODE_WORDS.get(type(node).__name__, type(node).__name__)
            raise InputError(f"The calculator does arithmetic only: no {what}.")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, int | float)):
            kind = {str: "text", bytes: "text", bool: "true/false"}.get(type(node.value), type(node.value).__name__)
            raise InputError(f"The calculator works on numbers only, not {kind}.")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise InputError("The calculator calls only its own functions by name, e.g. sqrt(2).")
            if node.func.id not in functions:
                raise InputError(f"Unknown function '{node.func.id}'; the calculator knows {', '.join(functions)}.")
            if node.keywords:
                raise InputError("The calculator's functions take plain arguments, e.g. round(2.345, 2).")
        if isinstance(node, ast.Name) and id(node) not in calls and node.id not in names:
            hint = f" ({node.id} is a function: write {node.id}(x))" if node.id in functions else ""
            raise InputError(f"Unknown name '{node.id}'{hint}; the calculator knows numbers, pi, e and tau.")


def _syntax_sentence(expression: str) -> str:
    for tail in (" 1", ")", " 1)", "))", " 1))"):
        try:
            ast.parse(expression + tail, mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        what = "a parenthesis is not closed" if tail.endswith(")") else "it ends before its last number"
        return f"The expression is incomplete: {what}."
    return "The expression is not valid arithmetic; write something like (2 + 3) * 4 or sqrt(2) / 2."


def format_number(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("math domain error")
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.15g}"
    return str(value)


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression exactly (use it rather than guessing a number): + - * / // % ** (or ^),
    parentheses, pi, e, and sqrt, sin, cos, tan, asin, acos, atan, log (natural, or log(x, base)), log10, log2,
    exp, floor, ceil, round, abs, min, max, radians, degrees.

    Args:
        expression: The expression, e.g. (2 + 3) * 4 or sqrt(2) / 2.
    """
    text = expression.strip().rstrip("=").strip()
    if len(text) > MAX_EXPRESSION_CHARS:
        raise InputError(
            f"The expression is {len(text):,} characters long; the calculator takes at most {MAX_EXPRESSION_CHARS}."
        )
    if not text:
        raise InputError("Nothing to calculate: give an expression such as (2 + 3) * 4.")
    # People write 2^10 for a power; as Python's xor it would also bind looser than +, so 2^10 + 1 meant 2^11.
    text = text.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise InputError(_syntax_sentence(text)) from None
    except (ValueError, RecursionError, MemoryError):  # NUL bytes; parentheses nested past the parser's depth
        raise InputError("The expression cannot be read: it holds odd characters or is nested too deeply.") from None
    evaluator, functions, names = _calculator()
    _vet(tree, functions, names)
    try:
        result = format_number(_check(evaluator.eval(text, previously_parsed=tree.body)))
    except ZeroDivisionError:
        raise InputError("Division by zero is undefined.") from None
    except (_TooLarge, OverflowError):
        raise InputError(
            f"The result is too large for the calculator (over about {MAX_INT_BITS * 3 // 10:,} digits)."
        ) from None
    except ValueError:
        raise InputError(
            "A value is outside what its function or power accepts (e.g. sqrt or log of a negative number)."
        ) from None
    except TypeError as exc:
        raise InputError(f"A function got the wrong number of arguments ({exc}).") from None
    except RecursionError:
        raise InputError("The expression is nested too deeply for the calculator.") from None
    except Exception as exc:  # simpleeval's own refusals: a last line behind the vetting above
        raise InputError(f"The calculator cannot evaluate this: {exc}.") from None
    return f"{text} = {result}"


# -------------------------------------------------------------------------------------------------------------
# Tools that need the context: the notes folder and the store


def _search_notes_tool(context: PluginContext) -> Callable[..., str]:
    def search_notes(query: str, limit: int = 5) -> str:
        """Search the user's own notes (Markdown and text files in their notes folder) by meaning and keywords;
        gives the best passages, each with its file, heading and a snippet.

        Args:
            query: What to look for, in a few words or a question.
            limit: How many passages to return (1 to 20).
        """
        from assistant.tools import notes

        return notes.search(context.settings, context.home, query, limit)

    return search_notes


def _remember_tool(context: PluginContext) -> Callable[..., str]:
    def remember(fact: str) -> str:
        """Store a fact about the user in long-term memory, as /remember does; later chats will know it.

        Args:
            fact: The fact in one sentence, in the user's words, e.g. "I am vegetarian."
        """
        from assistant.memory_prompt import remember_confirmation
        from assistant.memory_service import remember as remember_fact
        from assistant.memory_service import save_warning
        from storage.facts import MAX_FACT_CHARS

        text = " ".join(fact.split())
        if "\x00" in text:
            raise InputError("The fact contains binary data (NUL bytes); give text only.")
        if not text:
            raise InputError('Nothing to remember: give the fact, e.g. remember fact="I am vegetarian".')
        if len(text) > MAX_FACT_CHARS:
            raise InputError(f"A fact can be at most {MAX_FACT_CHARS:,} characters; shorten it and try again.")
        with context.open_store() as store:
            fact_id = remember_fact(store, text)
        reply = remember_confirmation(text, fact_id, context.settings.memory)
        warning = save_warning(text, fact_id)
        return f"{reply} {warning}" if warning else reply

    return remember


@hookimpl
def register_tools(register: Callable[[Any], None], context: PluginContext) -> None:
    """The built-in tools."""
    register(tool(now))
    register(tool(calculate))
    register(tool(name="search_notes", timeout=SEARCH_TIMEOUT)(_search_notes_tool(context)))
    register(tool(name="remember", side_effects=True)(_remember_tool(context)))
