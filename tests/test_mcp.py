"""MCP servers as tool sources, against real stdio servers: ``mcp-server-time`` from PyPI, and a small server of our
own (written with the same SDK) for the cases the time server cannot show: a tool with side effects, a call that
hangs, a server that dies during a call. Each test checks the server processes are gone when it ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from assistant.config.settings import McpServer, load_settings
from assistant.errors import InputError
from assistant.tools.core import Tool
from assistant.tools.mcp import McpError, McpSource
from assistant.tools.registry import load_tools
from tests.test_privacy import NETWORK_CALLS, ROOT, needs_strace, read_trace

BIN = Path(sys.executable).parent
WEEKDAYS = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}

# A server of our own: `echo` declares no annotations (so it counts as having side effects), `wait` never answers,
# `die` ends the process in the middle of a call.
OWN_SERVER = textwrap.dedent(
    """
    import os, sys, threading
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("own")

    @server.tool(name="echo", description="Say the text back.")
    def echo(text: str) -> str:
        print("echoing", text, file=sys.stderr, flush=True)
        return text

    @server.tool(name="Wait-Forever", description="Never answer.")
    def wait_forever() -> str:
        threading.Event().wait()
        return ""

    @server.tool(name="now", description="A name the built-in tools already use.")
    def now() -> str:
        return "own now"

    @server.tool(name="die", description="Exit in the middle of the call.")
    def die() -> str:
        print("dying on purpose", file=sys.stderr, flush=True)
        os._exit(7)

    server.run("stdio")
    """
)


def time_server(**extra: object) -> McpServer:
    script = BIN / "mcp-server-time"
    if script.exists():
        return McpServer(command=str(script), **extra)  # type: ignore[arg-type]
    return McpServer(command=sys.executable, args=["-m", "mcp_server_time"], **extra)  # type: ignore[arg-type]


def python_server(tmp_path: Path, code: str, timeout: float = 20.0) -> McpServer:
    script = tmp_path / "server.py"
    script.write_text(code, encoding="utf-8")
    return McpServer(command=sys.executable, args=[str(script)], timeout=timeout)


def children() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


def gone(pids: set[int]) -> bool:
    """None of the processes exists any more, not even as a zombie waiting to be reaped."""
    return not any(psutil.pid_exists(pid) for pid in pids)


@pytest.fixture
def source(home: Path) -> Iterator[McpSource]:
    before = children()
    source = McpSource("time", time_server(), home)
    yield source
    source.close()
    assert children() <= before, "the server process outlived close()"


# -- the time server, directly ----------------------------------------------------------------------------------


def test_time_server_tools_are_listed_with_their_schemas(source: McpSource) -> None:
    tools = {tool.name: tool for tool in source.tools()}

    assert set(tools) == {"get_current_time", "convert_time"}
    now = tools["get_current_time"]
    assert now.source == "mcp:time"
    assert now.parameters["required"] == ["timezone"]
    assert now.parameters["properties"]["timezone"]["type"] == "string"
    assert "timezone" in now.description.lower()
    assert now.side_effects is False  # the server marks it readOnlyHint


def test_get_current_time_answers_for_oslo(source: McpSource) -> None:
    now = {tool.name: tool for tool in source.tools()}["get_current_time"]

    answer = json.loads(now.func(timezone="Europe/Oslo"))

    assert answer["timezone"] == "Europe/Oslo"
    stamp = datetime.fromisoformat(answer["datetime"])
    offset = stamp.utcoffset()
    assert offset is not None and offset.total_seconds() in (3600.0, 7200.0)  # CET or CEST
    assert answer["day_of_week"] in WEEKDAYS
    assert answer["day_of_week"] == stamp.strftime("%A")


def test_a_malformed_timezone_is_one_sentence(source: McpSource) -> None:
    now = {tool.name: tool for tool in source.tools()}["get_current_time"]

    with pytest.raises(McpError) as caught:
        now.func(timezone="Europe/Nowhere")

    message = str(caught.value)
    assert "Europe/Nowhere" in message and "time" in message
    assert "\n" not in message and message.endswith(".")
    assert "Error executing tool" not in message  # the SDK's prefix is not repeated
    # the server is still there for the next call
    assert json.loads(now.func(timezone="UTC"))["timezone"] == "UTC"


def test_close_stops_the_server_and_is_idempotent(home: Path) -> None:
    before = children()
    source = McpSource("time", time_server(), home)
    source.tools()
    started = children() - before
    assert len(started) == 1

    source.close()
    source.close()

    assert gone(started)
    with pytest.raises(McpError, match="was stopped"):
        source.tools()


def test_the_servers_stderr_goes_to_a_private_log_not_the_terminal(
    home: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    source = McpSource("own", python_server(tmp_path, OWN_SERVER), home)
    try:
        echo = {tool.name: tool for tool in source.tools()}["echo"]
        assert echo.func(text="hello there") == "hello there"
    finally:
        source.close()

    assert "echoing hello there" in source.log_file.read_text(encoding="utf-8")
    assert "echoing" not in capfd.readouterr().err
    assert source.log_file.stat().st_mode & 0o777 == 0o600
    assert source.log_file.parent.stat().st_mode & 0o777 == 0o700


# -- servers that misbehave -------------------------------------------------------------------------------------


def test_a_command_that_does_not_exist_is_one_sentence(home: Path) -> None:
    source = McpSource("nothing", McpServer(command=str(home / "no-such-server")), home)

    with pytest.raises(McpError) as caught:
        source.tools()

    message = str(caught.value)
    assert "no-such-server" in message and "[mcp_servers.nothing]" in message
    assert "\n" not in message
    source.close()


def test_a_server_that_exits_at_once_quotes_its_last_words(
    home: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    before = children()
    code = "import sys\nprint('warming up', file=sys.stderr)\nsys.exit('config file missing: /etc/own.toml')\n"
    source = McpSource("own", python_server(tmp_path, code), home)

    with pytest.raises(McpError) as caught:
        source.tools()

    message = str(caught.value)
    assert "exited as it started" in message
    assert "config file missing: /etc/own.toml" in message
    assert "\n" not in message
    assert "config file missing" not in capfd.readouterr().err
    source.close()
    assert children() <= before


def test_a_server_that_never_speaks_mcp_times_out_with_one_sentence(
    home: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    before = children()
    code = "import threading\nthreading.Event().wait()\n"
    source = McpSource("mute", python_server(tmp_path, code, timeout=0.5), home)

    with pytest.raises(McpError) as caught:
        source.tools()

    message = str(caught.value)
    assert "did not answer within 0.5 s" in message
    assert "\n" not in message
    assert children() <= before  # stopped when it gave up, before close()
    assert capfd.readouterr().err == ""
    source.close()


def test_a_line_that_is_not_mcp_is_logged_not_printed(
    home: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The SDK complains (logging.exception) about such a line: printed on our stderr, it would land over the TUI.
    code = "print('hello, I am not MCP', flush=True)\n"
    source = McpSource("chatty", python_server(tmp_path, code), home)

    with pytest.raises(McpError) as caught:
        source.tools()
    source.close()

    assert "exited as it started" in str(caught.value)
    assert capfd.readouterr().err == ""
    assert "Invalid JSON" in source.log_file.read_text(encoding="utf-8")


def test_a_tool_that_hangs_gives_up_at_the_timeout(home: Path, tmp_path: Path) -> None:
    source = McpSource("own", python_server(tmp_path, OWN_SERVER), home)
    try:
        tools = {tool.name: tool for tool in source.tools()}
        # short for the calls only: a busy machine may take longer than that to start a Python server
        source.server = source.server.model_copy(update={"timeout": 0.5})
        assert "wait_forever" in tools  # "Wait-Forever" made into one of our names
        with pytest.raises(McpError, match="did not answer the call of Wait-Forever within 0.5 s"):
            tools["wait_forever"].func()
        assert tools["echo"].func(text="still here") == "still here"
    finally:
        source.close()


def test_a_server_that_dies_during_a_call_is_started_again(home: Path, tmp_path: Path) -> None:
    before = children()
    source = McpSource("own", python_server(tmp_path, OWN_SERVER), home)
    try:
        tools = {tool.name: tool for tool in source.tools()}
        with pytest.raises(McpError) as caught:
            tools["die"].func()
        assert "stopped during the call of die" in str(caught.value)
        assert "dying on purpose" in str(caught.value)
        assert tools["echo"].func(text="back again") == "back again"
    finally:
        source.close()
    assert children() <= before


def test_tools_without_a_read_only_hint_have_side_effects_and_clashes_get_the_server_prefix(
    home: Path, tmp_path: Path
) -> None:
    source = McpSource("own", python_server(tmp_path, OWN_SERVER), home, reserved=lambda: {"echo"})
    try:
        tools = {tool.name: tool for tool in source.tools()}
    finally:
        source.close()

    assert "echo" not in tools
    assert tools["own_echo"].side_effects is True
    assert tools["own_echo"].description == "Say the text back."


# -- through the settings file and the registry -----------------------------------------------------------------


def write_settings(home: Path, server: McpServer) -> None:
    home.mkdir(parents=True, exist_ok=True)
    args = ", ".join(json.dumps(arg) for arg in server.args)
    (home / "settings.toml").write_text(
        f"[mcp_servers.time]\ncommand = {json.dumps(server.command)}\nargs = [{args}]\ntimeout = 30\n",
        encoding="utf-8",
    )


def test_the_settings_file_configures_a_server_as_a_toml_table(home: Path) -> None:
    write_settings(home, time_server())

    settings = load_settings(home)

    assert settings.mcp_servers["time"].command == time_server().command
    assert settings.mcp_servers["time"].timeout == 30
    assert settings.warnings == []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[mcp_servers.Time]\ncommand = "x"\n', "mcp_servers"),
        ('[mcp_servers.time]\nargs = ["x"]\n', "mcp_servers.time.command"),
        ('[mcp_servers.time]\ncommand = "x"\nargz = ["x"]\n', "mcp_servers.time.argz"),
        ('[mcp_servers.time]\ncommand = "x"\ntimeout = 0\n', "mcp_servers.time.timeout"),
    ],
)
def test_a_malformed_server_setting_is_one_sentence(home: Path, text: str, where: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.toml").write_text(text, encoding="utf-8")

    with pytest.raises(InputError) as caught:
        load_settings(home)

    assert f"'{where}'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_environment_may_give_the_servers_as_json(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_MCP_SERVERS", json.dumps({"time": {"command": "mcp-server-time"}}))

    assert load_settings(home).mcp_servers["time"].command == "mcp-server-time"


def test_the_registry_calls_the_time_server(home: Path) -> None:
    write_settings(home, time_server())
    before = children()
    tools = load_tools(load_settings(home), home, entry_points=False)
    try:
        assert children() == before  # nothing started until a tool is needed

        result = tools.call("get_current_time", {"timezone": "Europe/Oslo"})
        assert result.ok, result.error
        assert result.source == "mcp:time"
        assert json.loads(result.content)["timezone"] == "Europe/Oslo"

        bad = tools.call("get_current_time", {"timezone": "Mars/Olympus_Mons"})
        assert not bad.ok and bad.error is not None
        assert "Mars/Olympus_Mons" in bad.error and "\n" not in bad.error

        with pytest.raises(InputError, match="timezone"):
            tools.call("get_current_time", {})

        info = next(i for i in tools.plugins() if i.name == "mcp:time")
        assert info.status == "loaded" and set(info.tools) == {"get_current_time", "convert_time"}
    finally:
        tools.close()
    assert children() <= before


def test_a_server_that_cannot_start_is_a_failure_in_the_registry_not_an_exception(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.toml").write_text('[mcp_servers.broken]\ncommand = "/no/such/mcp-server"\n', encoding="utf-8")
    tools = load_tools(load_settings(home), home, entry_points=False)
    try:
        listed = tools.list()
        failed = [info for info in tools.failures if info.name == "mcp:broken"]
        assert failed and failed[0].error is not None and "/no/such/mcp-server" in failed[0].error
        assert all(tool.source != "mcp:broken" for tool in listed)
    finally:
        tools.close()


def test_through_the_registry_a_clash_gets_the_prefix_and_side_effects_ask_first(home: Path, tmp_path: Path) -> None:
    server = python_server(tmp_path, OWN_SERVER)
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.toml").write_text(
        f"[mcp_servers.own]\ncommand = {json.dumps(server.command)}\nargs = {json.dumps(server.args)}\n",
        encoding="utf-8",
    )
    before = children()
    tools = load_tools(load_settings(home), home, entry_points=False)
    try:
        by_name = {tool.name: tool for tool in tools.list()}
        assert by_name["now"].source == "builtin"
        assert by_name["own_now"].source == "mcp:own"
        assert tools.call("own_now", {}, confirm=lambda tool, arguments: True).content == "own now"

        refused = tools.call("echo", {"text": "hi"})
        assert not refused.ok and refused.error is not None and "not confirmed" in refused.error
        asked: list[str] = []

        def confirm(tool: Tool, arguments: dict[str, object]) -> bool:
            asked.append(tool.name)
            return True

        agreed = tools.call("echo", {"text": "hi"}, confirm=confirm)
        assert agreed.ok and agreed.content == "hi" and asked == ["echo"]
    finally:
        tools.close()
    assert children() <= before


# -- privacy -----------------------------------------------------------------------------------------------------

PRIVACY_SCRIPT = """
import json, sys
from pathlib import Path
from assistant.config.settings import McpServer
from assistant.tools.mcp import McpSource
source = McpSource("time", McpServer(command=sys.argv[1], args=sys.argv[2:]), Path(sys.argv[0]).parent / "home")
now = {tool.name: tool for tool in source.tools()}["get_current_time"]
print(json.loads(now.func(timezone="Europe/Oslo"))["timezone"])
source.close()
"""


@needs_strace
def test_calling_the_time_server_makes_no_network_connection(tmp_path: Path) -> None:
    script = tmp_path / "call_time.py"
    script.write_text(PRIVACY_SCRIPT, encoding="utf-8")
    trace_file = tmp_path / "trace.txt"
    server = time_server()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(
        ["strace", "-f", "-qq", "-e", f"trace={NETWORK_CALLS},execve", "-o", str(trace_file),
         sys.executable, str(script), server.command, *server.args],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Europe/Oslo"
    trace = read_trace(trace_file.read_text(encoding="utf-8"), tmp_path)
    assert trace.network == []
    # the trace followed the server process too
    assert any("execve(" in line and server.command in line for line in trace_file.read_text().splitlines())
