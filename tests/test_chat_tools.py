"""Tools in a chat on the real parts: the bundled models' templates (no tool support, so no model-initiated calls),
`/tool NAME` in a real session on the bundled SmolLM2 followed by a normal turn that reads the stored result, and
the real CLI (`chat "/tool ..."`, `--json`, `--yes`, exit codes, `history show`, export and import)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.runtime.base import Backend
from assistant.session import Session
from assistant.tool_calls import ToolLoop, chat_template, supports_tools
from storage.db import Store
from tests.test_cli_chat import chat_json, ok, run_cli


def test_the_bundled_models_templates_support_no_tools(real_backend: Backend, tmp_path: Path) -> None:
    template = chat_template(real_backend)
    assert "<|im_start|>" in template  # SmolLM2's own template, read from the GGUF
    assert not supports_tools(real_backend)
    from gguf import GGUFReader

    from assistant.models import gemma3_path

    gemma = gemma3_path(tmp_path / "models")  # assembled from its packages, sha256-checked
    assert gemma is not None
    assert "tokenizer.chat_template" not in GGUFReader(str(gemma)).fields  # a base model: no template at all


def test_an_explicit_call_then_a_normal_turn_on_the_real_model(
    store: Store, settings: Settings, home: Path, real_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = Session(store, settings, home=home, loader=lambda spec, s: real_backend, use_memory=False)
    try:
        turn = session.start_turn("/tool calculate 2+3*4")
        text = "".join(c.text for c in turn.stream())
        assert "14" in text and turn.result is not None and turn.result.tools[0]["ok"] is True
        stored = store.messages(turn.conversation_id)[-1]
        assert json.loads(stored.tools or "[]")[0]["tool"] == "calculate"

        loads: list[object] = []
        monkeypatch.setattr("assistant.tools.registry.load_tools", lambda *a, **kw: loads.append(a))
        later = session.start_turn("What was the result of that calculation?", turn.conversation_id)
        assert not isinstance(later.backend, ToolLoop)  # SmolLM2 is offered no tools
        assert text in later.plan.prompt and "# Tools" not in later.plan.prompt  # it reads the stored result
        assert text in later.sources  # and its reply may rest on it
        reply = "".join(c.text for c in later.stream())
        assert later.result is not None and later.result.finish_reason in ("stop", "length") and reply.strip()
        assert later.result.checks is not None and later.result.tools == []
        assert loads == []  # a normal turn loads no plugin
    finally:
        session.close()


def test_a_normal_turn_on_the_real_model_loads_no_tools(real_session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[object] = []
    monkeypatch.setattr("assistant.tools.registry.load_tools", lambda *a, **kw: loads.append(a))
    turn = real_session.start_turn("Hello!")
    "".join(c.text for c in turn.stream())
    assert loads == [] and turn.result is not None and turn.result.tools == []


# -- the real CLI ---------------------------------------------------------------------------------------------------


def test_chat_runs_a_tool_and_reports_it_in_json() -> None:
    out = chat_json("/tool calculate 2+3*4")
    assert "14" in out["reply"] and out["model"] == "assistant"
    (result,) = out["tools"]
    assert result["tool"] == "calculate" and result["ok"] is True and result["arguments"] == {"expression": "2+3*4"}
    plain = ok("chat", "/tool now timezone=Europe/Oslo")
    assert "Europe/Oslo" in plain.stdout
    # The model reads it next (a real turn: the CLI loads SmolLM2).
    follow = chat_json("--conversation", str(out["conversation_id"]), "What was the result?")
    assert follow["reply"].strip() and follow["tools"] == []
    shown = ok("history", "show", str(out["conversation_id"])).stdout
    assert "tool calculate(expression='2+3*4')" in shown


@pytest.mark.parametrize(
    ("message", "sentence"),
    [
        ("/tool weather Oslo", "There is no tool weather; the tools are:"),
        ("/tool", "Name a tool after /tool"),
        ("/tool search_notes query=bread limit=many", "limit"),
    ],
)
def test_a_bad_tool_call_exits_2_and_stores_nothing(message: str, sentence: str) -> None:
    done = run_cli("chat", message)
    assert done.returncode == 2 and sentence in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert json.loads(ok("history", "list", "--json").stdout) == []


def test_a_tool_with_side_effects_needs_yes_without_a_terminal() -> None:
    refused = ok("chat", "--json", "/tool remember I drink my coffee black")
    out = json.loads(refused.stdout)
    assert out["tools"][0]["ok"] is False and "not confirmed" in out["reply"]
    assert "--yes" in refused.stderr
    assert json.loads(ok("memory", "facts", "--json").stdout) == []
    allowed = chat_json("--yes", "/tool remember I drink my coffee black")
    assert allowed["tools"][0]["ok"] is True
    assert [f["text"] for f in json.loads(ok("memory", "facts", "--json").stdout)] == ["I drink my coffee black"]


def test_tool_results_round_trip_through_export_and_import(tmp_path: Path) -> None:
    out = chat_json("/tool calculate 6*7")
    exported = tmp_path / "export.json"
    ok("history", "export", str(out["conversation_id"]), "--format", "json", "--output", str(exported))
    ok("history", "delete", str(out["conversation_id"]), "--yes")
    ok("history", "import", str(exported))
    (conversation,) = json.loads(ok("history", "list", "--json").stdout)
    shown = json.loads(ok("history", "show", str(conversation["id"]), "--json").stdout)
    assert shown["messages"][1]["tools"][0]["content"] == out["tools"][0]["content"]


def test_an_explicit_tool_result_is_shown_under_the_privacy_policy(fake_session: Session, store: Store) -> None:
    """A tool may hold what the user never typed here (a card in their notes): masked in the reply and in the stored
    result, as any reply is; typed by the user in this conversation, it is shown back."""
    from assistant.tools.core import tool

    def card_on_file() -> str:
        """The card on file."""
        return "The card on file is 4111 1111 1111 1111."

    class Wallet:
        name = "wallet"

        def tools(self) -> list[Any]:
            return [tool(card_on_file)]

        def close(self) -> None:
            pass

    fake_session.tools.add_source(Wallet())
    turn = fake_session.start_turn("/tool card_on_file")
    text = "".join(c.text for c in turn.stream())
    assert "4111" not in text and "[card]" in text
    stored = store.messages(turn.conversation_id)[-1]
    assert "4111" not in stored.content and "4111" not in (stored.tools or "") and "[card]" in (stored.tools or "")
    assert turn.result is not None and turn.result.badge == "masked"

    typed = fake_session.start_turn("My card is 4111 1111 1111 1111, keep it handy.", turn.conversation_id)
    "".join(c.text for c in typed.stream())
    again = fake_session.start_turn("/tool card_on_file", turn.conversation_id)
    assert "4111 1111 1111 1111" in "".join(c.text for c in again.stream())
