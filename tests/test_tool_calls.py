"""Tool calls in a chat: parsing recorded model outputs, the call loop on a scripted model, `/tool NAME` on the fake
model, and tool results stored, exported and imported with the reply.

The bundled models' templates support no tools (tests/test_chat_tools.py proves it on the real files), so the
model-initiated loop is proven here with recorded outputs of tool-calling models (tests/data/tool_calls/) streamed
by a scripted backend that renders the real Qwen 2.5 chat template.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.errors import InputError
from assistant.runtime.base import Chunk, GenerationParams
from assistant.session import Session
from assistant.tool_calls import (
    ToolLoop,
    parse_calls,
    render_tools,
    supports_tools,
    template_supports_tools,
    tool_style,
)
from assistant.tools.core import Tool, tool
from assistant.tools.registry import Tools
from storage.db import Store
from tests.fakes import FakeBackend

DATA = Path(__file__).parent / "data" / "tool_calls"
CASES: dict[str, list[dict[str, Any]]] = json.loads((DATA / "cases.json").read_text())
QWEN = (DATA / "templates" / "qwen2.5-instruct.jinja").read_text()
LLAMA31 = (DATA / "templates" / "llama-3.1-instruct.excerpt.jinja").read_text()


def recorded(name: str) -> str:
    return (DATA / name).read_text()


# -- parsing what models write -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_model_outputs_parse_to_their_calls(name: str) -> None:
    calls = parse_calls(recorded(name))
    expected = CASES[name]
    assert [c.name for c in calls] == [e["name"] for e in expected]
    for call, want in zip(calls, expected, strict=True):
        if want.get("error"):
            assert call.error and call.error.endswith(".") and "\n" not in call.error  # one sentence, fed back
        else:
            assert call.error is None and call.arguments == want["arguments"]


def test_garbage_never_raises() -> None:
    for text in ["<tool_call>", "<tool_call></tool_call>", "<|python_tag|>", "{", "[", "[]", "{}", '{"name": 3}',
                 "<tool_call>" + "{" * 5000, "<|python_tag|>x.call(1, 2)", "```json\n```", "\x00{"]:  # fmt: skip
        for call in parse_calls(text):
            assert call.error or call.name


# -- templates ---------------------------------------------------------------------------------------------------


def test_tool_capable_templates_are_recognised_with_their_family() -> None:
    assert template_supports_tools(QWEN) and tool_style(QWEN) == "hermes"
    assert template_supports_tools(LLAMA31) and tool_style(LLAMA31) == "llama3"
    smollm2_like = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}{% endfor %}"
    assert not template_supports_tools(smollm2_like) and not template_supports_tools("")


def calc() -> Tool:
    @tool
    def calculate(expression: str) -> str:
        """Evaluate an arithmetic expression.

        Args:
            expression: The expression, e.g. 2+3*4.
        """
        return f"{expression} = {eval(expression, {'__builtins__': {}})}"  # test tool on fixed inputs only

    return calculate


def test_tools_rendered_as_the_template_itself_renders_them() -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    tools = [calc()]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+3*4?"}]
    own = Jinja2ChatFormatter(template=QWEN, eos_token="<|im_end|>", bos_token="")
    by_template = own(messages=messages, tools=[t.schema() for t in tools]).prompt  # type: ignore[arg-type]
    ours = own(messages=[{"role": "system", "content": "Be brief.\n\n" + render_tools(tools)}, messages[1]]).prompt
    # The same instructions and signatures (Jinja's tojson orders keys and escapes differently: compare decoded).
    assert ours.split("<tools>")[0] == by_template.split("<tools>")[0]
    assert ours.split("</tools>")[1] == by_template.split("</tools>")[1]
    schemas = [json.loads(line) for line in ours.split("<tools>\n")[1].split("\n</tools>")[0].splitlines()]
    assert schemas == [t.schema() for t in tools]
    assert '"parameters"' in render_tools(tools, "llama3") and "<tool_call>" not in render_tools(tools, "llama3")


# -- the loop on a scripted model --------------------------------------------------------------------------------


class ScriptedModel(FakeBackend):
    """Recorded outputs streamed a few characters at a time (markers arrive split), prompts rendered with the
    real Qwen 2.5 template, as llama-cpp-python renders it."""

    def __init__(self, replies: list[str], template: str = QWEN) -> None:
        super().__init__(replies, n_ctx=4096)
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.name = "scripted"
        self.chat_template = template
        self._format = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="")

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        return self._format(messages=messages).prompt  # type: ignore[arg-type]

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Chunk]:
        self.prompts.append(prompt)
        reply = self.replies.pop(0) if self.replies else "(no more replies)"
        pieces = [reply[i : i + 3] for i in range(0, len(reply), 3)] or [""]
        for i, piece in enumerate(pieces):
            yield Chunk(piece, 1, 0.001 * i, "stop" if i == len(pieces) - 1 else None)


@pytest.fixture
def counted() -> dict[str, int]:
    return {"remember": 0}


@pytest.fixture
def test_tools(monkeypatch: pytest.MonkeyPatch, counted: dict[str, int]) -> Iterator[list[Tool]]:
    """The session loads these instead of the installed plugins: a calculator, a tool with side effects, one that
    raises, one that hangs and one with two typed parameters."""
    release = threading.Event()

    @tool(side_effects=True)
    def remember(fact: str) -> str:
        """Remember a fact."""
        counted["remember"] += 1
        return f"Remembered: {fact}"

    @tool
    def broken() -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    @tool(timeout=0.05)
    def hang() -> str:
        """Never answers in time."""
        release.wait()
        return "late"

    @tool
    def convert(amount: float, unit: str) -> str:
        """Convert a distance to metres."""
        return f"{amount * {'km': 1000, 'm': 1}[unit]:g} m"

    tools = [calc(), remember, broken, hang, convert]
    monkeypatch.setattr("assistant.tools.registry.load_tools", lambda settings, home, **kw: Tools(tools))
    yield tools
    release.set()


def session_on(store: Store, settings: Settings, home: Path, model: FakeBackend) -> Session:
    return Session(store, settings, home=home, loader=lambda spec, s: model, use_memory=False)


def shown(turn: Any) -> str:
    return "".join(chunk.text for chunk in turn.stream())


def test_a_call_is_run_and_the_model_answers_with_its_result(
    store: Store, settings: Settings, home: Path, test_tools: list[Tool]
) -> None:
    model = ScriptedModel([recorded("hermes_single.txt"), "It is 14."])
    session = session_on(store, settings, home, model)
    turn = session.start_turn("What is 2+3*4?")
    assert shown(turn) == "It is 14."  # the call itself never reaches the screen
    assert "# Tools" in model.prompts[0] and '"name": "calculate"' in model.prompts[0]
    assert "<tool_call>" in model.prompts[1]
    assert "<|im_start|>user\n<tool_response>\n2+3*4 = 14\n</tool_response><|im_end|>" in model.prompts[1]
    assert model.prompts[1].startswith(model.prompts[0])  # what the model read stays the prefix
    result = turn.result
    assert result is not None and result.finish_reason == "stop" and result.reply == "It is 14."
    assert [(t["tool"], t["arguments"], t["ok"], t["content"]) for t in result.tools] == [
        ("calculate", {"expression": "2+3*4"}, True, "2+3*4 = 14")
    ]
    stored = store.messages(result.conversation_id)[-1]
    assert stored.content == "It is 14." and json.loads(stored.tools or "[]") == result.tools
    # The result is a source: a reply that repeats it is grounded.
    assert "2+3*4 = 14" in turn.sources
    assert result.checks is not None and result.checks["grounding"]["score"] is not None
    assert result.badge in ("ok", "check")


def test_text_before_a_call_streams_and_several_calls_run(
    store: Store, settings: Settings, home: Path, test_tools: list[Tool]
) -> None:
    call = (
        'Let me work it out. <tool_call>\n{"name": "calculate", "arguments": {"expression": "1+1"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "calculate", "arguments": {"expression": "2*5"}}\n</tool_call>'
    )
    model = ScriptedModel([call, "Two and ten."])
    session = session_on(store, settings, home, model)
    turn = session.start_turn("Compute 1+1 and 2*5")
    chunks = [c.text for c in turn.stream() if c.text]
    assert "".join(chunks) == "Let me work it out. Two and ten."
    assert not any("<" in c for c in chunks)  # a marker arriving in pieces is held back, never shown
    assert "<tool_response>\n1+1 = 2\n</tool_response>\n<tool_response>\n2*5 = 10\n</tool_response>" in model.prompts[1]
    assert turn.result is not None and [t["content"] for t in turn.result.tools] == ["1+1 = 2", "2*5 = 10"]


@pytest.mark.parametrize(
    ("output", "fed_back"),
    [
        ("hermes_malformed_missing_brace.txt", "Error: The call to calculate could not be read as JSON"),
        ("hermes_no_name.txt", "Error: The tool call has no function name"),
        (
            "llama31_builtin_call.txt",
            "Error: There is no tool brave_search; the tools are: broken, calculate, convert, hang",
        ),
    ],
)
def test_a_malformed_or_unknown_call_is_fed_back_as_an_error(
    store: Store, settings: Settings, home: Path, test_tools: list[Tool], output: str, fed_back: str
) -> None:
    model = ScriptedModel([recorded(output), "Sorry, I could not compute that."])
    turn = session_on(store, settings, home, model).start_turn("Please compute it")
    assert shown(turn) == "Sorry, I could not compute that."
    assert fed_back in model.prompts[1]
    assert turn.result is not None and turn.result.finish_reason == "stop"
    assert turn.result.tools[0]["ok"] is False and turn.result.notice and fed_back[7:] in turn.result.notice


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ('{"name": "broken", "arguments": {}}', "The tool broken failed: RuntimeError: disk on fire."),
        ('{"name": "hang", "arguments": {}}', "The tool hang did not finish within 0.05 s"),
        ('{"name": "calculate", "arguments": {"expr": "1+1"}}', "expr"),
    ],
)
def test_a_failing_hanging_or_badly_called_tool_never_ends_the_chat(
    store: Store, settings: Settings, home: Path, test_tools: list[Tool], call: str, error: str
) -> None:
    model = ScriptedModel([f"<tool_call>\n{call}\n</tool_call>", "That did not work."])
    turn = session_on(store, settings, home, model).start_turn("Try the tool")
    assert shown(turn) == "That did not work."
    result = turn.result
    assert result is not None and result.tools[0]["ok"] is False and error in result.tools[0]["error"]
    assert f"Error: {result.tools[0]['error']}" in model.prompts[1]


def test_calls_stop_at_the_step_limit_and_the_model_must_answer(
    store: Store, settings: Settings, home: Path, test_tools: list[Tool]
) -> None:
    settings.tool_steps = 2
    model = ScriptedModel([recorded("hermes_single.txt")] * 3)
    turn = session_on(store, settings, home, model).start_turn("Loop forever")
    text = shown(turn)
    assert len(model.prompts) == 3  # two rounds of calls, then one last chance to answer
    assert "That was the last tool call allowed" in model.prompts[2]
    assert "I stopped after 2 rounds of tool calls" in text
    assert turn.result is not None and len(turn.result.tools) == 2 and turn.result.finish_reason == "stop"


def test_side_effects_run_only_when_confirmed(
    store: Store, settings: Settings, home: Path, test_tools: list[Tool], counted: dict[str, int]
) -> None:
    call = '<tool_call>\n{"name": "remember", "arguments": {"fact": "I like tea"}}\n</tool_call>'
    model = ScriptedModel([call, "I could not.", call, "Noted."])
    session = session_on(store, settings, home, model)
    refused = session.start_turn("Remember that I like tea")  # no one to ask: refused
    shown(refused)
    assert counted["remember"] == 0 and "was not confirmed" in model.prompts[1]
    asked: list[tuple[str, dict[str, Any]]] = []
    session.confirm_tool = lambda t, args: asked.append((t.name, args)) is None
    allowed = session.start_turn("Remember that I like tea")
    assert shown(allowed) == "Noted."
    assert counted["remember"] == 1 and asked == [("remember", {"fact": "I like tea"})]
    assert "Remembered: I like tea" in model.prompts[3]


def test_a_stop_while_a_call_is_being_written_keeps_the_turn_whole(
    store: Store, settings: Settings, home: Path, test_tools: list[Tool]
) -> None:
    model = ScriptedModel([recorded("hermes_single.txt"), "never read"])
    turn = session_on(store, settings, home, model).start_turn("2+3*4?")
    stop = threading.Event()
    for i, _ in enumerate(turn.stream(stop)):
        if i == 2:
            stop.set()  # the held chunks of the call still reach the turn, so it can stop between them
    assert turn.result is not None and turn.result.finish_reason == "cancelled" and len(model.prompts) == 1


def test_plain_answers_and_json_answers_pass_through_untouched(
    store: Store, settings: Settings, home: Path, test_tools: list[Tool]
) -> None:
    answers = [recorded("plain_answer.txt"), recorded("plain_json_answer.txt"), recorded("plain_text_with_braces.txt")]
    model = ScriptedModel(list(answers))
    session = session_on(store, settings, home, model)
    for answer in answers:
        turn = session.start_turn("Tell me")
        assert shown(turn) == answer and turn.result is not None and turn.result.tools == []
    assert len(model.prompts) == 3


def test_no_tools_are_loaded_on_a_turn_that_cannot_call_any(
    store: Store, settings: Settings, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[object] = []
    monkeypatch.setattr("assistant.tools.registry.load_tools", lambda *a, **kw: loads.append(a) or Tools([]))
    plain = FakeBackend(["Hi."])  # a template without tools, like the bundled models'
    turn = session_on(store, settings, home, plain).start_turn("Hello")
    assert shown(turn) == "Hi." and loads == [] and not isinstance(turn.backend, ToolLoop)
    settings.tools = False  # a template that supports tools, with model-initiated calls turned off
    model = ScriptedModel([recorded("hermes_single.txt")])
    assert supports_tools(model)
    turn = session_on(store, settings, home, model).start_turn("2+3*4?")
    assert shown(turn) == recorded("hermes_single.txt") and loads == [] and "# Tools" not in model.prompts[0]


def test_a_llama3_template_gets_llama3_instructions(
    store: Store, settings: Settings, home: Path, test_tools: list[Tool]
) -> None:
    model = ScriptedModel([recorded("llama32_bare_json.txt"), "It is 2.5."], template=QWEN)
    model.chat_template = LLAMA31  # the family decides the wording; the scripted prompts stay Qwen-shaped
    turn = session_on(store, settings, home, model).start_turn("(4+6)/4?")
    assert shown(turn) == "It is 2.5."
    assert '"parameters": dictionary of argument name' in model.prompts[0]
    assert turn.result is not None and turn.result.tools[0]["content"] == "(4 + 6) / 4 = 2.5"


# -- `/tool NAME ...` on the fake model ---------------------------------------------------------------------------


def test_an_explicit_call_is_a_stored_turn_without_the_model(
    fake_session: Session, fake_backend: FakeBackend, store: Store, test_tools: list[Tool]
) -> None:
    turn = fake_session.start_turn("/tool calculate 2+3*4")
    assert shown(turn) == "2+3*4 = 14" and fake_backend.prompts == []
    result = turn.result
    assert result is not None and result.tools[0]["content"] == "2+3*4 = 14"
    messages = store.messages(result.conversation_id)
    assert [(m.role, m.content) for m in messages] == [("user", "/tool calculate 2+3*4"), ("assistant", "2+3*4 = 14")]
    assert json.loads(messages[1].tools or "[]")[0]["arguments"] == {"expression": "2+3*4"}
    # The next turn reads the result in its history and may rest on it.
    fake_backend.replies = ["The result was 14."]
    later = fake_session.start_turn("What was the result?", result.conversation_id)
    assert shown(later) == "The result was 14."
    assert "2+3*4 = 14" in fake_backend.prompts[0] and "2+3*4 = 14" in later.sources


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("/tool", "Name a tool after /tool"),
        ("/tool weather Oslo", "There is no tool weather; the tools are: broken, calculate, convert, hang, remember."),
        ("/tool calculate", "expression"),
        ("/tool convert amount=ten unit=km", "amount"),
        ('/tool convert amount=1 unit="km', "quotes"),
    ],
)
def test_a_bad_explicit_call_is_refused_before_anything_is_stored(
    fake_session: Session, store: Store, test_tools: list[Tool], text: str, sentence: str
) -> None:
    with pytest.raises(InputError, match=sentence.replace("(", r"\(")) as refused:
        fake_session.start_turn(text)
    assert "\n" not in str(refused.value)
    assert store.list_conversations() == []


def test_an_explicit_call_that_fails_or_is_not_confirmed_says_so_in_its_reply(
    fake_session: Session, store: Store, test_tools: list[Tool], counted: dict[str, int]
) -> None:
    failed = fake_session.start_turn("/tool broken")
    assert shown(failed) == "The tool broken failed: RuntimeError: disk on fire."
    assert failed.result is not None and failed.result.finish_reason == "stop"
    refused = fake_session.start_turn("/tool remember I like tea")
    assert "was not confirmed" in shown(refused) and counted["remember"] == 0
    fake_session.confirm_tool = lambda t, args: True
    assert shown(fake_session.start_turn("/tool remember I like tea")) == "Remembered: I like tea"
    assert counted["remember"] == 1


def test_regenerating_an_explicit_call_runs_the_tool_again(
    fake_session: Session, fake_backend: FakeBackend, store: Store, test_tools: list[Tool]
) -> None:
    first = fake_session.start_turn("/tool calculate 6*7")
    shown(first)
    assert first.result is not None
    again = fake_session.regenerate(first.result.message_id)
    assert shown(again) == "6*7 = 42" and fake_backend.prompts == []


# -- stored, exported, imported ------------------------------------------------------------------------------------


def test_tool_results_survive_export_and_import(fake_session: Session, store: Store, test_tools: list[Tool]) -> None:
    from storage.transfer import export_json, export_markdown, import_parsed, read_import

    shown(fake_session.start_turn("/tool calculate 2+3*4"))
    assert "> *Tool `calculate`: 2+3*4 = 14*" in export_markdown(store)
    exported = export_json(store)
    assert json.loads(exported)["conversations"][0]["messages"][1]["tools"][0]["content"] == "2+3*4 = 14"
    store.delete_conversation(store.list_conversations()[0].id)
    import_parsed(store, read_import(exported.encode(), "export.json"))
    (conversation,) = store.list_conversations()
    reply = store.messages(conversation.id)[1]
    assert json.loads(reply.tools or "[]")[0]["tool"] == "calculate"


def test_an_import_with_malformed_tool_results_is_refused_whole(store: Store) -> None:
    from storage.transfer import read_import

    bad = {
        "format": "assistant-history",
        "version": 1,
        "conversations": [
            {
                "title": "t",
                "messages": [
                    {"role": "user", "content": "hi", "created_at": "2026-11-01T09:00:00Z"},
                    {"role": "assistant", "content": "14", "created_at": "2026-11-01T09:00:01Z", "tools": [{"x": 1}]},
                ],
            }
        ],
    }
    with pytest.raises(InputError, match="tool result 1 must have a tool name"):
        read_import(json.dumps(bad).encode(), "bad.json")
