"""Tool calls the model makes: whether its chat template supports them, the tools in its prompt, its calls parsed
from what it writes, and the loop that runs them and lets it answer with their results.

Only a model whose GGUF chat template mentions tools is offered any (SmolLM2's and Gemma 3's do not: for them
tools are called only explicitly, with ``/tool NAME``). The tools go into the system prompt in the wording the
model's family was trained on (Hermes / Qwen ``<tool_call>`` tags, or Llama 3's JSON with ``parameters``), so the
start of the prompt stays the same turn after turn. What the model writes is parsed leniently: the common formats,
JSON with single quotes or a trailing comma; a call that cannot be read becomes a tool error fed back to the model,
never an exception. The loop (:class:`ToolLoop`) is a backend wrapped around the real one, so a ``Turn`` streams
it like any reply: text before a call is shown as it comes, the call itself is held back and run, and the model
reads the results and goes on, for at most ``tool_steps`` rounds.
"""

from __future__ import annotations

import ast
import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from assistant.errors import AssistantError
from assistant.runtime.base import Backend, Chunk, GenerationParams, partial_marker

if TYPE_CHECKING:
    from assistant.tools.core import Tool, ToolResult
    from assistant.tools.registry import Confirm, Tools

Style = Literal["hermes", "llama3"]

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
PYTHON_TAG = "<|python_tag|>"
MARKERS = (TOOL_CALL_OPEN, PYTHON_TAG)  # a call may follow some text
OPENINGS = ("{", "[", "```json")  # a reply that starts like this may be a bare JSON call: held until it ends
_HERMES = re.compile(re.escape(TOOL_CALL_OPEN) + r"(.*?)(?:" + re.escape(TOOL_CALL_CLOSE) + r"|\Z)", re.S)
_FENCE = re.compile(r"\A```(?:json)?\s*(.*?)\s*(?:```\s*)?\Z", re.S)
_PY_CALL = re.compile(r"\A\s*([A-Za-z_][\w.]*)\s*\(")
ROOM_FOR_ANSWER = 64  # tokens the model must still have after the tool results to write an answer


@dataclass(slots=True)
class ToolCall:
    """One call the model wrote; ``error`` says why it cannot be run as written (fed back to the model)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


# -- the template ---------------------------------------------------------------------------------------------


def chat_template(backend: object) -> str:
    """The model's chat template (llama-cpp-python keeps the GGUF's ``tokenizer.chat_template`` in its metadata)."""
    template = getattr(backend, "chat_template", None)
    if isinstance(template, str):
        return template
    metadata = getattr(getattr(backend, "llm", None), "metadata", None)
    value = metadata.get("tokenizer.chat_template") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) else ""


def template_supports_tools(template: str) -> bool:
    """Whether a chat template was written for tool calls (it renders ``tools`` or tool messages)."""
    return bool(re.search(r"\btools\b|tool_call|<\|python_tag\|>|ipython|role\W+==\W+.tool", template))


def supports_tools(backend: object) -> bool:
    """Whether the loaded model's chat template supports tools (the bundled SmolLM2 and Gemma 3 do not)."""
    return template_supports_tools(chat_template(backend))


def tool_style(template: str) -> Style:
    """How the model's family writes calls: Llama 3's JSON with ``parameters``, else Hermes ``<tool_call>`` tags."""
    if "<|python_tag|>" in template or "ipython" in template or "<|eot_id|>" in template:
        return "llama3"
    return "hermes"


def render_tools(tools: Sequence[Tool], style: Style = "hermes") -> str:
    """The tools as the system prompt's last section, worded as the model's family's own template words them."""
    schemas = "\n".join(json.dumps(t.schema(), ensure_ascii=False) for t in tools)
    if style == "llama3":
        return (
            "You have access to the following functions. To call one, respond with only a JSON object in the "
            'format {"name": function name, "parameters": dictionary of argument name and its value}. '
            "Do not use variables. Call a function only when it helps answer.\n\n" + schemas
        )
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        f"{schemas}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


# -- parsing --------------------------------------------------------------------------------------------------


def _loads(text: str) -> Any:
    """JSON, or what a model writes instead: a Python literal (single quotes, True/None), a trailing comma, a
    first object followed by chatter. Raises ValueError when nothing can be read."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    start = min((i for i in (text.find("{"), text.find("[")) if i != -1), default=-1)
    if start != -1:
        try:
            return json.JSONDecoder().raw_decode(text[start:])[0]
        except ValueError:
            pass
        candidate = re.sub(r",\s*([}\]])", r"\1", text[start:])
        try:
            return json.loads(candidate)
        except ValueError:
            pass
        try:
            value = ast.literal_eval(candidate)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
        else:
            if isinstance(value, dict | list):
                return value
    raise ValueError("not JSON")


def _call_from(value: Any) -> ToolCall | None:
    """A decoded object as a call: {"name", "arguments" | "parameters"}, or OpenAI's {"function": {...}}."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):
        value = value["function"]
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI-style: the arguments as a JSON string
        try:
            arguments = _loads(arguments) if arguments.strip() else {}
        except ValueError:
            return ToolCall(name.strip(), {}, f"The arguments of the call to {name.strip()} are not valid JSON.")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return ToolCall(name.strip(), {}, f"The arguments of the call to {name.strip()} must be a JSON object.")
    return ToolCall(name.strip(), arguments)


def _calls_in(body: str, where: str) -> list[ToolCall]:
    """The calls in one tagged block; a block that cannot be read is one malformed call."""
    try:
        value = _loads(body)
    except ValueError:
        found = re.search(r"""["']name["']\s*:\s*["']([^"']+)""", body)
        name = found.group(1) if found else ""
        what = f"The call to {name}" if name else f"The {where}"
        return [ToolCall(name, {}, f'{what} could not be read as JSON; write {{"name": ..., "arguments": {{...}}}}.')]
    items = value if isinstance(value, list) else [value]
    calls = [_call_from(item) for item in items]
    bad = ToolCall("", {}, f'The {where} has no function name; write {{"name": ..., "arguments": {{...}}}}.')
    return [call if call is not None else bad for call in calls]


def _python_call(text: str) -> ToolCall | None:
    """Llama 3.1's built-in form after ``<|python_tag|>``: ``name.call(key="value")`` (literals only, no eval)."""
    match = _PY_CALL.match(text)
    if not match:
        return None
    name = match.group(1).removesuffix(".call")
    try:
        node = ast.parse(text.strip(), mode="eval").body
        if not isinstance(node, ast.Call) or node.args:
            raise ValueError
        arguments = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return ToolCall(name, {}, f"The call to {name} could not be read; give its arguments as a JSON object.")
    return ToolCall(name, arguments)


def parse_calls(text: str) -> list[ToolCall]:
    """The tool calls in what the model wrote (none: an answer).

    Understood: Hermes / Qwen ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (several, the last one
    maybe cut off), Llama 3 ``<|python_tag|>`` followed by JSON (``;``-separated) or ``name.call(k=v)``, and a bare
    JSON object or list with a name and its ``arguments`` or ``parameters`` (also in a ```json fence). A tagged call
    that cannot be read is returned with its ``error``; bare text that is not a call is not one.
    """
    if TOOL_CALL_OPEN in text:
        calls: list[ToolCall] = []
        for body in _HERMES.findall(text):
            if body.strip():
                calls += _calls_in(body, "tool call")
        return calls or [ToolCall("", {}, "The tool call was empty.")]
    if PYTHON_TAG in text:
        body = text.split(PYTHON_TAG, 1)[1].strip()
        if python := _python_call(body):
            return [python]
        calls = []
        for part in (p for p in re.split(r";\s*(?=[{\[])", body) if p.strip()):
            calls += _calls_in(part, "tool call")
        return calls or [ToolCall("", {}, "The tool call was empty.")]
    stripped = text.strip()
    if fence := _FENCE.match(stripped):
        stripped = fence.group(1)
    if not stripped.startswith(("{", "[")):
        return []
    try:
        value = _loads(stripped)
    except ValueError:
        # Broken JSON that names a function was meant as a call: say so to the model rather than show it.
        if re.match(r"""\A[\[{]\s*["']name["']\s*:""", stripped):
            return _calls_in(stripped, "tool call")
        return []
    items = value if isinstance(value, list) else [value]
    found = [_call_from(item) for item in items]
    if not items or any(call is None for call in found):
        return []  # JSON the user may have asked for, not a call
    return [call for call in found if call is not None]


# -- the loop -------------------------------------------------------------------------------------------------


def call_start(text: str) -> int | None:
    """Where a tool call may start in streamed text (None: none yet)."""
    found = [at for at in (text.find(marker) for marker in MARKERS) if at != -1]
    lead = len(text) - len(text.lstrip())
    if text[lead:].startswith(OPENINGS):
        found.append(lead)
    return min(found) if found else None


def hold_back(text: str) -> int:
    """How many characters at the end of streamed text may be the start of a call marker (held until decided)."""
    hold = partial_marker(text, MARKERS)
    body = text.lstrip()
    if body and any(opening.startswith(body) for opening in OPENINGS):
        hold = max(hold, len(text))  # "`" or "``": perhaps a fenced JSON call
    return hold


class _Splitter:
    """Streamed text split into what may be shown now and what is held back as a possible call."""

    def __init__(self) -> None:
        self.text = ""
        self.shown = 0
        self.start: int | None = None

    def feed(self, piece: str) -> str:
        self.text += piece
        if self.start is None:
            self.start = call_start(self.text)
        limit = self.start if self.start is not None else len(self.text) - hold_back(self.text)
        out = self.text[self.shown : limit] if limit > self.shown else ""
        self.shown = max(self.shown, limit)
        return out

    @property
    def held(self) -> str:
        return self.text[self.shown :]


def failed_result(call_name: str, arguments: dict[str, Any], error: str) -> ToolResult:
    from assistant.tools.core import ToolResult, one_sentence

    return ToolResult(call_name or "unknown", dict(arguments), False, "", one_sentence(error), 0.0, "model")


def run_call(tools: Tools, call: ToolCall, confirm: Confirm | None) -> ToolResult:
    """Run one call of the model; whatever goes wrong (a malformed call, an unknown tool, bad arguments, the
    tool's own failure) is a failed result with one sentence, never an exception."""
    if call.error:
        return failed_result(call.name, call.arguments, call.error)
    try:
        return tools.call(call.name, call.arguments, confirm=confirm)
    except AssistantError as exc:
        error = str(exc)
        if call.name and "There is no tool" in error:
            names = ", ".join(t.name for t in tools.list()) or "none"
            error = f"There is no tool {call.name}; the tools are: {names}."
        return failed_result(call.name, call.arguments, error)
    except Exception as exc:  # the registry itself broke: the chat goes on
        return failed_result(call.name, call.arguments, f"The tool {call.name} could not run ({type(exc).__name__}).")


def result_message(result: ToolResult) -> str:
    """A result as the model reads it."""
    return result.content if result.ok else f"Error: {result.error}"


class ToolLoop:
    """A backend around the model that runs the tool calls it writes and lets it go on with their results.

    Each round streams the model; text before a call is passed on as it comes, the call is held back, run
    (side effects only when ``confirm`` says yes), and the model reads the results as tool messages. After
    ``steps`` rounds the model must answer: calls it still writes are not run. ``results`` collects every
    result (the session stores them with the reply); ``notices`` a sentence per failed call.
    """

    def __init__(
        self,
        backend: Backend,
        tools: Tools,
        messages: list[dict[str, str]],
        *,
        steps: int,
        confirm: Confirm | None = None,
        results: list[ToolResult] | None = None,
    ) -> None:
        self.backend = backend
        self.name = backend.name
        self.n_ctx = backend.n_ctx
        self.tools = tools
        self.messages = list(messages)  # the conversation as the first prompt rendered it
        self.steps = steps
        self.confirm = confirm
        self.results: list[ToolResult] = results if results is not None else []
        self.notices: list[str] = []
        self.rounds = 0

    @property
    def adapter_version(self) -> str | None:
        return getattr(self.backend, "adapter_version", None)

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        return self.backend.format_chat(messages)

    def close(self) -> None:
        pass  # the model belongs to the session

    def _render(self, said: str, results: list[ToolResult], last: bool) -> str:
        """The next prompt: the call the model wrote, then each result as a tool message."""
        texts = [result_message(r) for r in results]
        if last:
            texts[-1] += "\n(That was the last tool call allowed: answer now with what you have.)"
        self.messages.append({"role": "assistant", "content": said})
        try:
            return self.backend.format_chat([*self.messages, *({"role": "tool", "content": t} for t in texts)])
        except Exception:  # a template that knows no tool role reads the results as the user's message
            pass
        wrapped = "\n".join(f"<tool_response>\n{t}\n</tool_response>" for t in texts)
        return self.backend.format_chat([*self.messages, {"role": "user", "content": wrapped}])

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Chunk]:
        started = time.perf_counter()
        while True:
            splitter = _Splitter()
            finish: str | None = None
            inner = self.backend.stream(prompt, params)
            try:
                for chunk in inner:
                    shown = splitter.feed(chunk.text)
                    finish = chunk.finish_reason or finish
                    # Held tokens still count, and an empty chunk lets the turn check for a stop between them.
                    logprob = chunk.logprob if shown else None
                    yield Chunk(shown, chunk.tokens, time.perf_counter() - started, None, logprob)
            finally:
                close = getattr(inner, "close", None)
                if close is not None:
                    close()
            calls = parse_calls(splitter.held) if splitter.held.strip() else []
            if not calls:
                yield Chunk(splitter.held, 0, time.perf_counter() - started, finish or "stop")
                return
            if self.rounds >= self.steps:
                self.notices.append(f"The model asked for more than {self.steps} rounds of tool calls; it was stopped.")
                text = f"I stopped after {self.steps} rounds of tool calls without an answer; ask again."
                gap = "\n\n" if splitter.text[: splitter.shown].strip() else ""
                yield Chunk(gap + text, 0, time.perf_counter() - started, "stop")
                return
            self.rounds += 1
            results = [run_call(self.tools, call, self.confirm) for call in calls]
            self.results += results
            self.notices += [r.error for r in results if not r.ok and r.error]
            prompt = self._render(splitter.text, results, self.rounds >= self.steps)
            if self.backend.count_tokens(prompt) > self.n_ctx - ROOM_FOR_ANSWER:
                self.notices.append("The tool results did not fit the model's context window.")
                text = "The tool results are too long for the model's context window to answer with them."
                yield Chunk(text, 0, time.perf_counter() - started, "stop")
                return
