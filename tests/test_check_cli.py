"""`assistant check` through the real console script (subprocess) and the real detectors: the JSON Lines contract,
order, malformed lines, exit codes, huge lines, streaming, terminals. The plumbing's failure path (a detector that
raises on one text) is tested in-process with a stand-in, the only place one is used."""

from __future__ import annotations

import io
import json
import os
import pty
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.checks import Finding, Grounding
from assistant.checks.run import CheckInput, CheckResult, check_isolated, check_many, parse_line
from assistant.errors import InputError
from tests.test_cli_chat import ASSISTANT, ROOT, cli_env, run_cli

pytestmark = pytest.mark.slow  # each run loads presidio and the embedder (a few seconds)

CONTEXT = ["Ana Silva lives in Porto and works as a nurse at Santo António hospital since 2019."]
GOOD: dict[str, Any] = {
    "text": "Ana works as a nurse in Porto. Write to ana.silva@example.com or call +44 20 7946 0958.",
    "context": CONTEXT,
    "user_inputs": ["you can reach me at ana.silva@example.com"],
}
FIELDS = {"pii", "redacted", "grounding"}


def lines_in(*items: Any) -> bytes:
    """JSON Lines from objects (dumped) and bytes (taken as they are)."""
    return b"".join((i if isinstance(i, bytes) else json.dumps(i).encode()) + b"\n" for i in items)


def answers(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert "Traceback" not in done.stderr, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def assert_contract(answer: dict[str, Any], text: str) -> None:
    assert set(answer) == FIELDS
    for item in answer["pii"]:
        assert set(item) == {"type", "start", "end", "text"}
        assert text[item["start"] : item["end"]] == item["text"]
    assert set(answer["grounding"]) == {"score", "flagged"}
    score = answer["grounding"]["score"]
    assert score is None or 0.0 <= score <= 1.0
    for flag in answer["grounding"]["flagged"]:
        assert set(flag) == {"start", "end", "text", "reason"}
        assert text[flag["start"] : flag["end"]] == flag["text"] and flag["reason"]


def test_the_contract_masks_what_the_user_did_not_type_and_grounds_against_the_context() -> None:
    secret = "The deploy key is AKIAIOSFODNN7EXAMPLE, as you said."
    unsupported: dict[str, Any] = {"text": "Ana has lived in Lisbon since 2011.", "context": CONTEXT}
    supported: dict[str, Any] = {"text": "Ana lives in Porto and works as a nurse.", "context": CONTEXT}
    stdin = lines_in(GOOD, {"text": secret, "user_inputs": [secret]}, unsupported, supported)
    done = run_cli("check", "--json", input=stdin)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar off a terminal, no notes
    first, second, third, fourth = answers(done)

    assert_contract(first, GOOD["text"])
    assert {p["type"] for p in first["pii"]} >= {"email", "phone"}
    assert "ana.silva@example.com" in first["redacted"]  # typed by the user: shown back
    assert "7946 0958" not in first["redacted"] and "[phone]" in first["redacted"]  # not typed: masked
    assert first["grounding"]["score"] is not None

    assert_contract(second, secret)
    assert "AKIAIOSFODNN7EXAMPLE" not in second["redacted"]  # a secret is masked even when the user typed it
    assert second["grounding"] == {"score": None, "flagged": []}  # no context: says so rather than scoring 1

    assert_contract(third, unsupported["text"])
    assert any("Lisbon" in f["text"] for f in third["grounding"]["flagged"])
    assert third["redacted"] == unsupported["text"]
    assert_contract(fourth, supported["text"])
    assert fourth["grounding"]["flagged"] == [] and fourth["grounding"]["score"] > third["grounding"]["score"]


def test_answers_keep_input_order_across_batches() -> None:
    items = [{"text": f"Line {i}: write to user{i}@example.org about order {i}."} for i in range(300)]
    done = run_cli("check", input=lines_in(*items))  # piped: JSON Lines without --json too
    assert done.returncode == 0, done.stderr
    got = answers(done)
    assert len(got) == 300
    for i, answer in enumerate(got):
        assert_contract(answer, items[i]["text"])
        assert [p["text"] for p in answer["pii"] if p["type"] == "email"] == [f"user{i}@example.org"]
        assert f"user{i}@" not in answer["redacted"]


def test_worker_processes_give_the_same_answers_in_the_same_order() -> None:
    items: list[Any] = [
        {
            "text": f"Reply {i}: Ana lives in {'Porto' if i % 3 else 'Lisbon'}, mail ana{i}@example.com.",
            # Five contexts, shared unevenly: a batch is split among the workers by context, and evenly.
            "context": CONTEXT if i % 4 else [*CONTEXT, f"Ana's note number {i % 5}."],
        }
        for i in range(200)
    ]
    items[77] = b"not json"
    stdin = lines_in(*items)
    alone = run_cli("check", input=stdin)
    side_by_side = run_cli("check", "--jobs", "2", input=stdin)
    assert alone.returncode == side_by_side.returncode == 2
    assert side_by_side.stderr == ""
    assert side_by_side.stdout == alone.stdout
    got = answers(side_by_side)
    assert got[77] == {"error": "Line 78 is not JSON (Expecting value at column 1)."}
    assert [a["pii"][0]["text"] for i, a in enumerate(got) if i != 77] == [
        f"ana{i}@example.com" for i in range(200) if i != 77
    ]


def test_two_thousand_realistic_lines_give_two_thousand_answers_in_order(tmp_path: Path) -> None:
    from bench.check_cli_data import build

    # What `python -m bench checkcli` times: 300-500 character replies against shared contexts, about one in three
    # with personal data or a secret. Batched, cached and embedded together, each answer must be the one that
    # line gets when it is checked alone.
    items = build(2000)
    path = tmp_path / "in.jsonl"
    path.write_bytes(lines_in(*items))
    with path.open("rb") as stdin:
        done = subprocess.run(
            [ASSISTANT, "check", "--json"], stdin=stdin, capture_output=True, text=True, env=cli_env(), cwd=ROOT
        )
    assert done.returncode == 0, done.stderr[-2000:]
    got = answers(done)
    assert len(got) == 2000
    for item, answer in zip(items, got, strict=True):
        assert_contract(answer, item["text"])  # every offset points into this line's own text
        if not answer["pii"]:
            assert answer["redacted"] == item["text"]
    assert sum(a["grounding"]["score"] is not None for a in got) > 1900  # None: the context is off-topic
    assert sum(bool(a["pii"]) for a in got) > 400
    assert sum(a["redacted"] != item["text"] for item, a in zip(items, got, strict=True)) > 300
    assert sum(bool(a["grounding"]["flagged"]) for a in got) > 400
    # Checked one at a time in a process of their own (this one keeps no models loaded for the tests after it).
    sample = list(range(0, 2000, 50))
    code = (
        "import json, sys\n"
        "from assistant.checks.run import CheckInput, check\n"
        "for item in json.load(sys.stdin):\n"
        "    alone = check(CheckInput(item['text'], tuple(item['context']), tuple(item.get('user_inputs', ()))))\n"
        "    print(json.dumps(alone.to_dict()))\n"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([items[i] for i in sample]),
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=ROOT,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    alone = [json.loads(line) for line in probe.stdout.splitlines()]
    assert len(alone) == len(sample)
    for i, expected in zip(sample, alone, strict=True):
        assert got[i] == expected, f"line {i + 1}"


def test_the_embedder_groups_texts_by_length_and_keeps_each_its_own_vector(embedder: Any) -> None:
    import numpy as np

    from storage.embedder import TOKEN_BUDGET

    # Lengths from one word to past the model's limit, shuffled: several length groups, each padded to its longest.
    words = "the cat sat on a warm mat near Porto in 2019 while Ana wrote".split()
    texts = [" ".join(words[j % len(words)] for j in range(n)) for n in (1, 300, 7, 40, 2, 120, 13, 60, 5, 25) * 12]
    assert sum(len(t.split()) for t in texts) > 3 * TOKEN_BUDGET
    together = np.array(embedder.embed(texts))
    alone = np.array([embedder.embed([t])[0] for t in texts])
    assert together.shape == (len(texts), 384)
    assert np.allclose(together, alone, atol=1e-5)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


MALFORMED: list[tuple[bytes, str]] = [
    (b"this is not json", "is not JSON"),
    (b'{"text": "unterminated', "is not JSON"),
    (b"[1, 2]", "is a JSON array, not an object"),
    (b'"just a string"', "is a JSON string, not an object"),
    (b'{"context": ["a"]}', 'has no "text" field'),
    (b'{"text": 42}', '"text" is a JSON number, not a string'),
    (b'{"text": null}', '"text" is a JSON null, not a string'),
    (b'{"text": "x", "context": "a source"}', '"context" is a JSON string, not a list of strings'),
    (b'{"text": "x", "context": ["ok", 3]}', '"context" item 1 is a JSON number, not a string'),
    (b'{"text": "x", "user_inputs": {"a": 1}}', '"user_inputs" is a JSON object, not a list of strings'),
    (b'{"text": "caf\xe9"}', "is not valid UTF-8"),
    (b'{"text": "a\x00b"}', "holds a NUL byte"),
    (b'{"text": "a\\u0000b"}', '"text" holds a NUL character'),
    (b'{"text": "half \\ud800 a pair"}', '"text" holds a lone surrogate'),
]


def test_each_malformed_line_gets_its_own_error_and_the_others_are_checked() -> None:
    good = [{"text": f"Reply {i} mentions nobody@example.net."} for i in range(len(MALFORMED) + 1)]
    stream: list[Any] = []
    for i, (bad, _) in enumerate(MALFORMED):
        stream += [good[i], bad]
    stream.append(good[-1])
    done = run_cli("check", "--json", input=lines_in(*stream))
    assert done.returncode == 2, done.stderr  # some line was malformed
    assert done.stderr == ""
    got = answers(done)
    assert len(got) == len(stream)
    for number, (item, answer) in enumerate(zip(stream, got, strict=True), 1):
        if isinstance(item, bytes):
            expected = dict(MALFORMED)[item]
            assert set(answer) == {"error"}
            message = answer["error"]
            assert message.startswith(f"Line {number}") and expected in message, message
            assert message.endswith(".") and "\n" not in message
        else:
            assert_contract(answer, item["text"])
            assert answer["pii"][0]["text"] == "nobody@example.net"


def test_blank_lines_are_skipped_and_line_numbers_count_them() -> None:
    done = run_cli("check", input=b'\n{"text": "hello"}\r\n   \n\r\n{"text": 1}\n\n{"text": "no newline at the end"}')
    assert done.returncode == 2
    got = answers(done)
    assert len(got) == 3
    assert got[0]["redacted"] == "hello"
    assert got[1]["error"].startswith("Line 5:")
    assert got[2]["redacted"] == "no newline at the end"


def test_empty_input_writes_nothing_and_succeeds() -> None:
    for stdin in (b"", b"\n\n  \n"):
        done = run_cli("check", input=stdin)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_a_200000_character_text_and_an_overlong_line() -> None:
    filler = "The weather report said it would rain later in the week. " * 3600
    text = filler[:200_000] + " Reach me at big.text@example.com now."
    assert len(text) >= 200_000
    overlong = json.dumps({"text": "x" * (5 * 1024 * 1024)}).encode()  # over the 4 MiB limit
    done = run_cli("check", input=lines_in({"text": text, "context": [filler[:2000]]}, overlong, {"text": "after"}))
    assert done.returncode == 2, done.stderr
    big, refused, after = answers(done)
    assert_contract(big, text)
    email = [p for p in big["pii"] if p["type"] == "email"]
    assert [p["text"] for p in email] == ["big.text@example.com"]
    assert email[0]["start"] == text.index("big.text@example.com")
    assert refused["error"] == "Line 2 is longer than 4 MiB; split the text."
    assert after["redacted"] == "after"


def test_answers_stream_while_the_input_is_still_open() -> None:
    # A producer that waits for each answer before writing the next line must not deadlock.
    proc = subprocess.Popen(
        [ASSISTANT, "check"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=cli_env(), cwd=ROOT
    )
    assert proc.stdin is not None and proc.stdout is not None
    for i in range(3):
        proc.stdin.write(json.dumps({"text": f"ping {i} from p{i}@example.com"}).encode() + b"\n")
        proc.stdin.flush()
        answer = json.loads(proc.stdout.readline())
        assert answer["pii"][0]["text"] == f"p{i}@example.com"
    proc.stdin.close()
    assert proc.stdout.read() == b""
    assert proc.wait(timeout=300) == 0


def test_ctrl_c_stops_with_whole_answers_and_exit_130() -> None:
    proc = subprocess.Popen(
        [ASSISTANT, "check"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        cwd=ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b'{"text": "one line from x@example.com"}\n')
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["pii"][0]["text"] == "x@example.com"  # running, waiting for more
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130
    assert out == b""
    assert err.decode().strip() == "Interrupted; 1 answer was written, each for its input line in order."


def _run_on_pty(stdin: bytes | Path, *args: str, stdout_tty: bool) -> tuple[int, str, str]:
    """Run `assistant check` with stderr (and optionally stdout) on a pseudo-terminal; returns (code, out, tty)."""
    master, slave = pty.openpty()
    source = stdin.open("rb") if isinstance(stdin, Path) else None  # a file: the bar knows how many lines
    proc = subprocess.Popen(
        [ASSISTANT, "check", *args],
        stdin=source or subprocess.PIPE,
        stdout=slave if stdout_tty else subprocess.PIPE,
        stderr=slave,
        env=cli_env(TERM="xterm"),
        cwd=ROOT,
    )
    os.close(slave)
    seen = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the slave has closed it
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    out, _ = proc.communicate(stdin if isinstance(stdin, bytes) else None, timeout=300)
    if source:
        source.close()
    reader.join()
    os.close(master)
    return proc.returncode, (out or b"").decode(), seen.decode("utf-8", "replace")


def test_a_terminal_on_stderr_never_takes_the_json_from_stdout(tmp_path: Path) -> None:
    items = [{"text": f"note {i} for q{i}@example.com"} for i in range(200)]
    path = tmp_path / "in.jsonl"
    path.write_bytes(lines_in(*items))
    code, out, tty = _run_on_pty(path, stdout_tty=False)
    assert code == 0, tty
    got = [json.loads(line) for line in out.splitlines()]
    assert [a["pii"][0]["text"] for a in got] == [f"q{i}@example.com" for i in range(200)]
    assert "Checking" in tty and "/200" in tty  # the bar, counting the file's lines
    assert '"pii"' not in tty and "Traceback" not in tty  # the bar's terminal got none of the answers


def test_on_a_terminal_without_json_each_answer_is_one_readable_line() -> None:
    stdin = lines_in({"text": "Call +44 20 7946 0958.", "context": ["Call the office."]}, b"oops")
    code, _, tty = _run_on_pty(stdin, stdout_tty=True)
    assert code == 2
    shown = [line for line in tty.splitlines() if line.strip()]
    assert len(shown) == 2, tty
    assert shown[0].split()[0] == "1" and "phone" in shown[0] and "grounding" in shown[0]
    assert shown[1].split()[0] == "2" and "error: Line 2 is not JSON" in shown[1]

    code, _, tty = _run_on_pty(stdin, "--json", stdout_tty=True)
    assert code == 2
    assert [json.loads(line) for line in tty.splitlines() if line.strip()][1] == {
        "error": "Line 2 is not JSON (Expecting value at column 1)."
    }


def test_help_documents_the_contract_and_loads_no_detector() -> None:
    done = run_cli("check", "--help")
    assert done.returncode == 0
    for words in ('"user_inputs"', '"redacted"', '"flagged"', "Exit codes", "2 some line was malformed", "--json"):
        assert words in done.stdout, words
    listed = run_cli("--help")
    assert "check" in listed.stdout and "personal data" in listed.stdout

    heavy = ["presidio_analyzer", "spacy", "onnxruntime", "detect_secrets", "chromadb", "assistant.checks.privacy"]
    code = (
        "import json, sys\n"
        "from assistant.cli import main\n"
        "try:\n    main(['check', '--help'])\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))\n"
    )
    probe = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=cli_env())
    assert probe.returncode == 0, probe.stderr
    assert "--json" in probe.stdout  # the help did run
    assert json.loads(probe.stdout.splitlines()[-1]) == []


# -- the plumbing, with a stand-in for the detectors ---------------------------------------------------------------


class StandIn:
    """Finds the word "secret" and grounds nothing; raises on a text holding "boom"."""

    def find_pii(self, text: str) -> list[Finding]:
        if "boom" in text:
            raise ValueError("the detector broke")
        at = text.find("secret")
        return [Finding("password", at, at + 6, "secret", secret=True)] if at >= 0 else []

    def redact(self, text: str, findings: list[Finding], user_inputs: Sequence[str]) -> str:
        return text.replace("secret", "[password]")

    def ground_many(self, items: Sequence[CheckInput]) -> list[Grounding]:
        return [Grounding(None if not item.context else 1.0) for item in items]


def test_a_text_that_breaks_a_detector_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    items = [CheckInput("a secret"), CheckInput("boom"), CheckInput("fine", ("src",))]
    results = check_isolated(items, StandIn())
    assert isinstance(results[1], ValueError)
    first, third = results[0], results[2]
    assert isinstance(first, CheckResult) and first.redacted == "a [password]"
    assert isinstance(third, CheckResult) and third.grounding.score == 1.0
    with pytest.raises(ValueError):
        check_many(items, StandIn())

    # Through the command's loop: its own error line, the others answered, exit code 1 (not the input's fault).
    from assistant.checks import run
    from assistant.cli import check as command

    monkeypatch.setattr(run, "real_detectors", StandIn)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    stdin = io.BytesIO(lines_in({"text": "a secret"}, {"text": "boom"}, {"text": "fine"}))
    code = command.run_check(stdin, command._Writer(), human=False)
    assert code == 1
    got = [json.loads(line) for line in out.getvalue().splitlines()]
    assert got[0]["redacted"] == "a [password]" and got[2]["redacted"] == "fine"
    assert got[1] == {"error": "Line 2 could not be checked (ValueError: the detector broke)."}


def test_parse_line_accepts_null_and_missing_lists_and_ignores_other_fields() -> None:
    assert parse_line(b'{"text": "t", "context": null, "id": 7}\n') == CheckInput("t")
    assert parse_line('{"text": "ü", "user_inputs": ["ü"]}'.encode()) == CheckInput("ü", (), ("ü",))
    with pytest.raises(InputError, match=r"^Line 9 has no \"text\" field\.$"):
        parse_line(b"{}", "Line 9")
