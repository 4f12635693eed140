"""Plugins: the example package installed for real and used through the CLI; broken plugins isolated.

The example (examples/assistant-plugin-dice) is installed once per module with pip into a tmp dir that goes on
PYTHONPATH, the way a user's `pip install` puts it on the path. The broken plugins are tiny fake distributions
(a ``.dist-info`` with ``entry_points.txt`` and METADATA, and a module) written into a tmp dir.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.plugins import ENTRY_POINT_GROUP
from assistant.tools.registry import Tools, load_tools
from tests.test_cli_chat import cli_env, run_cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "assistant-plugin-dice"


def write_dist(site: Path, name: str, source: str, entry: str | None = None) -> None:
    """A fake installed distribution ``name`` whose entry point ``name`` is the module ``plug_<name>``."""
    module = f"plug_{name}"
    info = site / f"plug_{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: plug-{name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{name} = {entry or module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


HEADER = """
        import threading
        from assistant.plugins import hookimpl, tool
"""

BROKEN = {
    "crash_import": """
        raise RuntimeError("the plugin's config file is missing")
    """,
    "exit_import": """
        import sys
        sys.exit(3)
    """,
    "slow_import": HEADER
    + """
        import time
        time.sleep(0.3)  # an import that does real work (not an assertion: nothing waits on it)

        @tool
        def slow_ping() -> str:
            '''Answer pong.'''
            return "pong"

        @hookimpl
        def register_tools(register, context):
            register(slow_ping)
    """,
    "raiser": HEADER
    + """
        @tool
        def explode(x: int = 1) -> str:
            '''Always fails.'''
            raise ValueError("the calendar file is corrupt")

        @hookimpl
        def register_tools(register, context):
            register(explode)
    """,
    "hanger": HEADER
    + """
        RELEASE = threading.Event()

        @tool(timeout=0.2)
        def hang() -> str:
            '''Never answers until released.'''
            RELEASE.wait()
            return "late"

        @hookimpl
        def register_tools(register, context):
            register(hang)
    """,
    "garbage": HEADER
    + """
        @tool
        def give_bytes() -> bytes:
            '''Bytes.'''
            return b"raw"

        @tool
        def give_object() -> object:
            '''An object.'''
            return object()

        @tool
        def give_set() -> dict:
            '''A dict holding a set.'''
            return {"a": {1, 2}}

        @hookimpl
        def register_tools(register, context):
            register(give_bytes)
            register(give_object)
            register(give_set)
    """,
    "badsig": HEADER
    + """
        def untyped(x):
            '''No hints.'''
            return x

        @hookimpl
        def register_tools(register, context):
            register(untyped)
    """,
    "exit_hook": HEADER
    + """
        import sys

        @hookimpl
        def register_tools(register, context):
            sys.exit("no calendar configured")
    """,
    "badhook": HEADER
    + """
        @hookimpl
        def register_tools(register, context, extra):
            pass
    """,
    "effects": HEADER
    + """
        from pathlib import Path

        @tool(side_effects=True)
        def touch(path: str) -> str:
            '''Create a file.

            Args:
                path: Where.
            '''
            Path(path).write_text("made")
            return f"created {path}"

        @hookimpl
        def register_tools(register, context):
            register(touch)
    """,
    "badcommand": HEADER
    + """
        import click

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def boom():
                '''Crash.'''
                raise KeyError("oops")
    """,
}


@pytest.fixture(scope="module")
def dice_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin, installed offline with pip from a copy (the checkout stays clean)."""
    root = tmp_path_factory.mktemp("dice")
    source = root / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "--no-index"]
    done = subprocess.run([*pip, "--target", str(site), str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return site


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("broken")
    for name, source in BROKEN.items():
        write_dist(site, name, source)
    return site


@pytest.fixture
def tools(broken_site: Path, dice_site: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tools]:
    monkeypatch.syspath_prepend(str(dice_site))
    monkeypatch.syspath_prepend(str(broken_site))
    with load_tools(load_settings(home), home) as loaded:
        yield loaded


def path_env(*sites: Path) -> str:
    return ":".join(str(s) for s in sites)


# ---------------------------------------------------------------------------------------------------------------
# The example plugin, installed and used through the real CLI


def test_example_plugin_installs_with_its_entry_point(dice_site: Path) -> None:
    code = (
        "from importlib.metadata import entry_points; "
        f"print([(e.name, e.value) for e in entry_points(group={ENTRY_POINT_GROUP!r})])"
    )
    done = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(dice_site)}, capture_output=True)
    assert ("dice", "assistant_plugin_dice") in eval(done.stdout)


def test_example_tool_runs_from_the_cli(dice_site: Path) -> None:
    done = run_cli("tools", "run", "roll", "--arg", "sides=20", "--arg", "count=3", "--arg", "seed=7", "--json",
                   PYTHONPATH=str(dice_site))  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] and result["source"] == "dice"
    assert result["arguments"] == {"sides": 20, "count": 3, "seed": 7}  # text from --arg became numbers
    rolls = json.loads(result["content"])
    assert len(rolls["rolls"]) == 3 and all(1 <= r <= 20 for r in rolls["rolls"])
    assert rolls["total"] == sum(rolls["rolls"])
    again = run_cli(
        "tools", "run", "roll", "-a", "sides=20", "-a", "count=3", "-a", "seed=7", PYTHONPATH=str(dice_site)
    )
    assert json.loads(again.stdout) == rolls  # the plain output is the tool's text, the same roll


def test_example_plugin_listed_with_its_tool_and_command(dice_site: Path) -> None:
    done = run_cli("plugins", "list", "--json", PYTHONPATH=str(dice_site))
    assert done.returncode == 0, done.stderr
    dice = next(p for p in json.loads(done.stdout)["plugins"] if p["name"] == "dice")
    assert dice["status"] == "loaded" and dice["error"] is None
    assert dice["origin"] == "assistant-plugin-dice 0.1.0"
    assert dice["tools"] == ["roll"] and dice["commands"] == ["dice"]
    listed = json.loads(run_cli("tools", "list", "--json", PYTHONPATH=str(dice_site)).stdout)
    roll = next(t for t in listed["tools"] if t["name"] == "roll")
    assert roll["description"] == "Roll dice and add them up."
    assert roll["parameters"]["properties"]["sides"]["description"].startswith("How many faces")


def test_example_plugin_command_runs_and_help_stays_plugin_free(dice_site: Path, broken_site: Path) -> None:
    done = run_cli("dice", "--count", "4", PYTHONPATH=str(dice_site))
    assert done.returncode == 0, done.stderr
    left, total = done.stdout.strip().split(" = ")
    assert sum(int(x) for x in left.split(" + ")) == int(total)
    # `--help` imports no plugin: the one that exits on import would end it, the crashing one would print.
    helped = run_cli("--help", PYTHONPATH=path_env(broken_site, dice_site))
    assert helped.returncode == 0 and "plugins" in helped.stdout and "Traceback" not in helped.stderr
    code = (
        "import sys\nfrom assistant.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('plug', 'assistant_plugin', 'assistant.plugins'))))"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(PYTHONPATH=path_env(broken_site, dice_site)), capture_output=True,
        text=True, cwd=ROOT,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == "[]"  # neither the plugins nor pluggy were imported


# ---------------------------------------------------------------------------------------------------------------
# Broken plugins: one clear sentence each, the rest goes on


def test_failing_plugins_are_reported_and_the_rest_load(tools: Tools) -> None:
    infos = {info.name: info for info in tools.plugins()}
    assert infos["crash_import"].status == "failed"
    assert "failed to import" in (infos["crash_import"].error or "")
    assert "config file is missing" in (infos["crash_import"].error or "")
    assert infos["exit_import"].status == "failed" and "SystemExit" in (infos["exit_import"].error or "")
    assert infos["badsig"].status == "failed"
    assert "parameter 'x'" in (infos["badsig"].error or "") and "type hint" in (infos["badsig"].error or "")
    assert infos["badhook"].status == "failed" and "hooks are not valid" in (infos["badhook"].error or "")
    assert infos["exit_hook"].error == (
        "The plugin exit_hook was skipped: registering its tools failed: SystemExit: no calendar configured."
    )
    for info in infos.values():
        if info.error:
            assert "\n" not in info.error and info.error.endswith(".")
    assert {i.name for i in tools.failures} == {"crash_import", "exit_import", "badsig", "badhook", "exit_hook"}
    assert infos["dice"].status == "loaded" and tools.call("roll", {"seed": 1}).ok


def test_slow_plugin_is_reported_with_its_load_time(tools: Tools) -> None:
    slow = next(info for info in tools.plugins() if info.name == "slow_import")
    assert slow.status == "loaded" and slow.tools == ["slow_ping"]
    assert slow.load_ms > 0
    assert tools.call("slow_ping", {}).content == "pong"
    assert tools.call("roll", {"sides": 2, "seed": 3}).ok  # the others are unaffected


def test_tool_that_raises_gives_one_sentence(tools: Tools) -> None:
    result = tools.call("explode", {})
    assert not result.ok and result.source == "raiser"
    assert result.error == "The tool explode failed: ValueError: the calendar file is corrupt."


def test_hanging_tool_times_out_and_the_thread_is_released(tools: Tools) -> None:
    result = tools.call("hang", {})
    assert not result.ok and "did not finish within 0.2 s" in (result.error or "")
    # The worker is a daemon still waiting; let it finish so the test leaves nothing behind.
    sys.modules["plug_hanger"].RELEASE.set()
    assert tools.call("roll", {"seed": 1}).ok


def test_hanging_tool_does_not_hold_the_cli(broken_site: Path) -> None:
    done = run_cli("tools", "run", "hang", PYTHONPATH=str(broken_site))
    assert done.returncode == 1
    assert "did not finish within 0.2 s" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "words"),
    [("give_bytes", "a bytes"), ("give_object", "a object"), ("give_set", "not JSON")],
)
def test_garbage_results_are_refused(tools: Tools, name: str, words: str) -> None:
    result = tools.call(name, {})
    assert not result.ok and result.content == ""
    assert result.error is not None and "returned something unusable" in result.error and words in result.error


def test_crashing_plugin_command_is_one_sentence(broken_site: Path) -> None:
    done = run_cli("boom", PYTHONPATH=str(broken_site))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "The command boom of the plugin badcommand failed: KeyError" in done.stderr


def test_disabled_plugin_is_not_imported(broken_site: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(broken_site))
    monkeypatch.setenv("ASSISTANT_PLUGINS_DISABLED", "crash_import, exit_import")
    with load_tools(load_settings(home), home) as loaded:
        infos = {info.name: info for info in loaded.plugins()}
    assert infos["crash_import"].status == "disabled" and infos["crash_import"].error is None
    assert infos["exit_import"].status == "disabled"


def test_cli_lists_failures_and_doctor_reports_them(broken_site: Path) -> None:
    done = run_cli("plugins", "list", "--json", PYTHONPATH=str(broken_site))
    assert done.returncode == 0, done.stderr
    status = {p["name"]: p["status"] for p in json.loads(done.stdout)["plugins"]}
    assert status["crash_import"] == "failed" and status["raiser"] == "loaded"
    table = run_cli("plugins", "list", PYTHONPATH=str(broken_site))
    assert "crash_import" in table.stdout and "failed" in table.stdout
    doctor = run_cli("doctor", "--json", PYTHONPATH=str(broken_site))
    check = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "plugins")
    assert check["status"] == "warn" and "crash_import" in check["detail"] and "raiser" in check["detail"]


def test_missing_mcp_support_is_a_failure_not_a_crash(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "assistant.tools.mcp", None)  # as if the MCP part could not be imported
    monkeypatch.setenv("ASSISTANT_MCP_SERVERS", json.dumps({"clock": {"command": "mcp-server-time"}}))
    with load_tools(load_settings(home), home, entry_points=False) as loaded:
        failed = [info for info in loaded.plugins() if info.status == "failed"]
    assert [info.name for info in failed] == ["mcp:clock"]
    assert "MCP support could not be loaded" in (failed[0].error or "")


# ---------------------------------------------------------------------------------------------------------------
# Arguments and confirmation through the CLI


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--arg", "sides=many"], 2, "The parameter 'sides' of the tool roll must be a whole number, not 'many'."),
        (["--arg", "faces=6"], 2, "The tool roll has no parameter 'faces'; it takes: sides, count, seed."),
        (["--arg", "sides"], 2, "The argument 'sides' is not key=value; give each as --arg key=value."),
        (["--arg", "count=1", "--arg", "count=2"], 2, "The parameter 'count' is given twice; give it once."),
    ],
)
def test_malformed_arguments_from_the_cli(dice_site: Path, args: list[str], code: int, message: str) -> None:
    done = run_cli("tools", "run", "roll", *args, PYTHONPATH=str(dice_site))
    assert done.returncode == code
    assert done.stderr.strip() == f"Error: {message}"


def test_unknown_tool_is_not_found(dice_site: Path) -> None:
    done = run_cli("tools", "run", "rol", PYTHONPATH=str(dice_site))
    assert done.returncode == 5
    assert "There is no tool rol; `assistant tools list` shows them." in done.stderr


def test_side_effect_tool_needs_yes(broken_site: Path, tmp_path: Path) -> None:
    target = tmp_path / "made.txt"
    refused = run_cli("tools", "run", "touch", "--arg", f"path={target}", PYTHONPATH=str(broken_site))
    assert refused.returncode == 2
    assert "changes things and needs confirmation; add --yes" in refused.stderr
    assert not target.exists()
    ran = run_cli("tools", "run", "touch", "--arg", f"path={target}", "--yes", "--json", PYTHONPATH=str(broken_site))
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["content"] == f"created {target}"
    assert target.read_text() == "made"


def test_side_effect_tool_runs_only_when_confirmed(tools: Tools, tmp_path: Path) -> None:
    target = tmp_path / "made.txt"
    asked: list[dict[str, object]] = []

    def no(tool: object, arguments: dict[str, object]) -> bool:
        asked.append(arguments)
        return False

    for confirm in (None, no):
        result = tools.call("touch", {"path": str(target)}, confirm=confirm)
        assert not result.ok and "was not confirmed" in (result.error or "")
    assert asked == [{"path": str(target)}] and not target.exists()
    assert tools.call("touch", {"path": str(target)}, confirm=lambda tool, args: True).ok
    assert target.exists()


def test_same_tool_name_twice_fails_the_second_plugin(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    source = textwrap.dedent(HEADER) + "\n@tool\ndef twin() -> str:\n    '''Twin.'''\n    return '{}'\n\n@hookimpl\n" \
        "def register_tools(register, context):\n    register(twin)\n"  # fmt: skip
    write_dist(site, "first", source.format("first"))
    write_dist(site, "second", source.format("second"))
    monkeypatch.syspath_prepend(str(site))
    with load_tools(load_settings(home), home) as loaded:
        infos = {info.name: info for info in loaded.plugins() if info.name in ("first", "second")}
        assert sorted(i.status for i in infos.values()) == ["failed", "loaded"]
        failed = next(i for i in infos.values() if i.status == "failed")
        assert "a tool named twin is already registered" in (failed.error or "")
        assert loaded.get("twin").source != failed.name


def test_tui_start_imports_no_plugin_machinery(broken_site: Path) -> None:
    # The TUI's first frame must not wait for discovery: its modules import neither pluggy nor the registry.
    code = (
        "import sys, tui.launcher, tui.app\n"
        "print(sorted(m for m in sys.modules if m.startswith(('plug', 'assistant.plugins', 'assistant.tools'))))"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(PYTHONPATH=str(broken_site)), capture_output=True, text=True, cwd=ROOT
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == "[]"
