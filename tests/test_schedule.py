"""The nightly schedule (systemd timer, crontab entry, launchd agent) and the one-run-at-a-time lock.

The schedule is driven through fake `systemctl`, `crontab` and `launchctl` scripts on the Platform's PATH and a
config dir in tmp_path: the real user's crontab and systemd are never touched. The lock is tested across real
processes, including one killed while it holds the lock.
"""

from __future__ import annotations

import os
import plistlib
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.errors import InputError
from learning import schedule
from learning.lock import RunInProgress, holder, run_lock
from learning.schedule import MARKER, Platform, ScheduleError

PROGRAM = Path("/opt/my venv/bin/assistant")

SYSTEMCTL = """\
#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$*" in
  "--user show-environment") [ -n "$FAKE_SYSTEMD" ] && exit 0 || { echo "Failed to connect to bus" >&2; exit 1; } ;;
  "--user is-enabled assistant-learn.timer") echo enabled ;;
  "--user show assistant-learn.timer --property=NextElapseUSecRealtime") echo "NextElapseUSecRealtime=Thu 2026-11-26 03:00:00 UTC" ;;
esac
exit 0
"""

CRONTAB = """\
#!/bin/sh
echo "crontab $*" >> "$FAKE_LOG"
if [ "$1" = "-l" ]; then
  [ -f "$FAKE_CRONTAB" ] && { /bin/cat "$FAKE_CRONTAB"; exit 0; }
  echo "no crontab for tester" >&2; exit 1
fi
if [ "$1" = "-" ]; then /bin/cat > "$FAKE_CRONTAB"; exit 0; fi
exit 2
"""

LAUNCHCTL = """\
#!/bin/sh
echo "launchctl $*" >> "$FAKE_LOG"
exit 0
"""


def _tool(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _tool(bin_dir, "systemctl", SYSTEMCTL)
    _tool(bin_dir, "crontab", CRONTAB)
    _tool(bin_dir, "launchctl", LAUNCHCTL)
    return {
        "bin": bin_dir,
        "log": tmp_path / "tools.log",
        "crontab": tmp_path / "crontab.txt",
        "config": tmp_path / "config",
        "user": tmp_path / "user",
    }


def platform(fake: dict[str, Path], system: str = "linux", systemd: bool = False, tools: tuple[str, ...] = ()) -> Platform:
    env = {
        "PATH": str(fake["bin"]),
        "HOME": str(fake["user"]),
        "XDG_CONFIG_HOME": str(fake["config"]),
        "FAKE_LOG": str(fake["log"]),
        "FAKE_CRONTAB": str(fake["crontab"]),
        "UID": "501",
    }
    if systemd:
        env["FAKE_SYSTEMD"] = "1"
    for name in tools:  # tools this system lacks
        (fake["bin"] / name).unlink()
    return Platform(system=system, env=env)


def log(fake: dict[str, Path]) -> list[str]:
    return fake["log"].read_text().splitlines() if fake["log"].exists() else []


# -- the time --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("at,expected", [("03:00", (3, 0)), ("3:05", (3, 5)), ("23:59", (23, 59)), (" 00:00 ", (0, 0))])
def test_parse_at_accepts_24_hour_times(at: str, expected: tuple[int, int]) -> None:
    assert schedule.parse_at(at) == expected


@pytest.mark.parametrize("at", ["24:00", "12:60", "3", "03:00pm", "", "03-00", "123:00"])
def test_parse_at_refuses_anything_else_in_one_sentence(at: str) -> None:
    with pytest.raises(InputError, match="HH:MM") as caught:
        schedule.parse_at(at)
    assert caught.value.exit_code == 2


def test_a_bad_time_changes_nothing(fake: dict[str, Path], home: Path) -> None:
    with pytest.raises(InputError):
        schedule.install("25:00", home=home, program=PROGRAM, platform=platform(fake, systemd=True))
    assert log(fake) == [] and not fake["config"].exists()


# -- systemd ---------------------------------------------------------------------------------------------------------


def test_systemd_timer_files_commands_and_status(fake: dict[str, Path], home: Path) -> None:
    plat = platform(fake, systemd=True)
    done = schedule.install("04:30", home=home, program=PROGRAM, platform=plat)

    units = fake["config"] / "systemd" / "user"
    service = (units / "assistant-learn.service").read_text()
    timer = (units / "assistant-learn.timer").read_text()
    assert 'ExecStart="/opt/my venv/bin/assistant" learn' in service  # quoted: the path has a space
    assert f'Environment="ASSISTANT_HOME={home}"' in service or f"Environment=ASSISTANT_HOME={home}" in service
    assert "Type=oneshot" in service and MARKER in service
    assert "OnCalendar=*-*-* 04:30:00" in timer and "Persistent=true" in timer and "WantedBy=timers.target" in timer
    assert "--user daemon-reload" in log(fake)
    assert "--user enable --now assistant-learn.timer" in log(fake)
    assert not fake["crontab"].exists()  # systemd runs here: no crontab entry beside the timer

    assert done.kind == "systemd" and done.installed and done.at == "04:30" and done.enabled is True
    assert done.command == '"/opt/my venv/bin/assistant" learn'
    assert done.next_run == "Thu 2026-11-26 03:00:00 UTC"
    assert sorted(Path(f).name for f in done.files) == ["assistant-learn.service", "assistant-learn.timer"]


def test_systemd_install_twice_is_one_timer_at_the_new_time(fake: dict[str, Path], home: Path) -> None:
    plat = platform(fake, systemd=True)
    schedule.install("03:00", home=home, program=PROGRAM, platform=plat)
    schedule.install("05:15", home=home, program=PROGRAM, platform=plat)
    units = sorted(p.name for p in (fake["config"] / "systemd" / "user").iterdir())
    assert units == ["assistant-learn.service", "assistant-learn.timer"]
    assert schedule.status(platform=plat).at == "05:15"


def test_systemd_uninstall_removes_exactly_what_install_wrote(fake: dict[str, Path], home: Path) -> None:
    plat = platform(fake, systemd=True)
    units = fake["config"] / "systemd" / "user"
    units.mkdir(parents=True)
    (units / "other.service").write_text("[Service]\nExecStart=/bin/true\n")
    schedule.install("03:00", home=home, program=PROGRAM, platform=plat)

    removed = schedule.uninstall(platform=plat)

    assert sorted(Path(p).name for p in removed) == ["assistant-learn.service", "assistant-learn.timer"]
    assert sorted(p.name for p in units.iterdir()) == ["other.service"]
    assert "--user disable --now assistant-learn.timer" in log(fake)
    assert not schedule.status(platform=plat).installed
    assert schedule.uninstall(platform=plat) == []  # nothing left: nothing to say it removed


def test_a_unit_file_the_user_wrote_by_that_name_is_not_ours(fake: dict[str, Path]) -> None:
    plat = platform(fake, systemd=True)
    units = fake["config"] / "systemd" / "user"
    units.mkdir(parents=True)
    (units / "assistant-learn.timer").write_text("[Timer]\nOnCalendar=daily\n")
    assert schedule.uninstall(platform=plat) == []
    assert (units / "assistant-learn.timer").exists()


# -- cron ------------------------------------------------------------------------------------------------------------


def test_cron_entry_when_no_systemd_user_manager_runs(fake: dict[str, Path], home: Path) -> None:
    fake["crontab"].write_text("MAILTO=me@example.org\n0 * * * * /usr/bin/backup\n")
    plat = platform(fake, systemd=False)

    done = schedule.install("03:07", home=home, program=PROGRAM, platform=plat)

    lines = fake["crontab"].read_text().splitlines()
    assert lines[:2] == ["MAILTO=me@example.org", "0 * * * * /usr/bin/backup"]  # the user's own lines stay
    assert lines[2] == f"7 3 * * * ASSISTANT_HOME={home} '/opt/my venv/bin/assistant' learn {MARKER}"
    assert not (fake["config"] / "systemd").exists()
    assert done.kind == "cron" and done.installed and done.at == "03:07"
    assert done.command == f"ASSISTANT_HOME={home} '/opt/my venv/bin/assistant' learn"


def test_cron_install_is_idempotent_and_uninstall_leaves_the_rest(fake: dict[str, Path], home: Path) -> None:
    fake["crontab"].write_text("0 * * * * /usr/bin/backup\n")
    plat = platform(fake, systemd=False)
    schedule.install("03:00", home=home, program=PROGRAM, platform=plat)
    schedule.install("02:30", home=home, program=PROGRAM, platform=plat)
    ours = [line for line in fake["crontab"].read_text().splitlines() if MARKER in line]
    assert len(ours) == 1 and ours[0].startswith("30 2 * * * ")

    assert schedule.uninstall(platform=plat) == ["crontab entry"]
    assert fake["crontab"].read_text() == "0 * * * * /usr/bin/backup\n"
    assert not schedule.status(platform=plat).installed
    assert schedule.status(platform=plat).kind == "cron"


def test_cron_with_no_crontab_yet_and_a_percent_in_the_path(fake: dict[str, Path], home: Path) -> None:
    plat = platform(fake, systemd=False)
    schedule.install("03:00", home=home, program=Path("/opt/100%/assistant"), platform=plat)
    line = fake["crontab"].read_text().splitlines()[0]
    assert "/opt/100\\%/assistant" in line  # cron reads a bare % as a newline
    schedule.uninstall(platform=plat)
    assert fake["crontab"].read_text() == ""


def test_no_scheduler_at_all_is_one_sentence(fake: dict[str, Path], home: Path) -> None:
    plat = platform(fake, systemd=False, tools=("systemctl", "crontab"))
    with pytest.raises(ScheduleError, match="Neither a systemd user manager nor crontab"):
        schedule.install("03:00", home=home, program=PROGRAM, platform=plat)
    assert schedule.status(platform=plat).installed is False


def test_a_crontab_that_cannot_be_written_is_one_sentence(fake: dict[str, Path], home: Path) -> None:
    _tool(fake["bin"], "crontab", '#!/bin/sh\n[ "$1" = "-l" ] && exit 0\necho "crontab: permission denied" >&2; exit 1\n')
    with pytest.raises(ScheduleError, match="Writing the crontab failed: crontab: permission denied"):
        schedule.install("03:00", home=home, program=PROGRAM, platform=platform(fake, systemd=False))


def test_switching_to_systemd_replaces_a_cron_entry(fake: dict[str, Path], home: Path) -> None:
    schedule.install("03:00", home=home, program=PROGRAM, platform=platform(fake, systemd=False))
    plat = platform(fake, systemd=True)
    schedule.install("03:00", home=home, program=PROGRAM, platform=plat)
    assert MARKER not in fake["crontab"].read_text()  # never two nightly runs
    assert schedule.status(platform=plat).kind == "systemd"


# -- launchd ---------------------------------------------------------------------------------------------------------


def test_launchd_agent_on_macos(fake: dict[str, Path], home: Path) -> None:
    plat = platform(fake, system="darwin")
    done = schedule.install("03:45", home=home, program=PROGRAM, platform=plat)

    path = fake["user"] / "Library" / "LaunchAgents" / "org.assistant.learn.plist"
    agent = plistlib.loads(path.read_bytes())
    assert agent["ProgramArguments"] == [str(PROGRAM), "learn"]
    assert agent["StartCalendarInterval"] == {"Hour": 3, "Minute": 45}
    assert agent["EnvironmentVariables"] == {"ASSISTANT_HOME": str(home)}
    assert "launchctl bootstrap gui/501 " + str(path) in log(fake)
    assert not fake["crontab"].exists()
    assert done.kind == "launchd" and done.installed and done.at == "03:45" and done.enabled is True

    schedule.install("03:45", home=home, program=PROGRAM, platform=plat)
    assert [p.name for p in path.parent.iterdir()] == ["org.assistant.learn.plist"]
    assert schedule.uninstall(platform=plat) == [str(path)]
    assert not path.exists() and "launchctl bootout gui/501/org.assistant.learn" in log(fake)


def test_default_home_is_not_written_into_the_command(fake: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSISTANT_HOME")
    plat = platform(fake, systemd=False)
    schedule.install("03:00", program=PROGRAM, platform=plat)
    assert "ASSISTANT_HOME" not in fake["crontab"].read_text()


def test_the_scheduled_program_is_this_installs_assistant_script() -> None:
    program = schedule.default_program()
    assert program.is_absolute() and program.name == "assistant"
    assert program.parent == Path(sys.executable).parent.absolute()


# -- the lock --------------------------------------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from learning.lock import run_lock
    with run_lock(Path(sys.argv[1])):
        print("held", flush=True)
        sys.stdin.readline()  # hold until told (or killed)
    """
)


def _hold_in_child(home: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_one_run_at_a_time_names_the_holder(home: Path) -> None:
    child = _hold_in_child(home)
    try:
        with pytest.raises(RunInProgress, match=rf"A learning run is already in progress \(pid {child.pid}\)"):
            with run_lock(home):
                pass
        assert holder(home) == child.pid
    finally:
        assert child.stdin is not None
        child.stdin.write("done\n")
        child.stdin.close()
        child.wait()
    assert holder(home) is None
    with run_lock(home) as held:  # released: the next run goes
        assert held.pid == os.getpid() and holder(home) is not None


def test_a_run_that_died_holding_the_lock_never_blocks_the_next(home: Path) -> None:
    child = _hold_in_child(home)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert (home / "learn.lock").read_text().strip() == str(child.pid)  # its pid is still written...
    assert holder(home) is None  # ...but the kernel dropped its lock with it
    with run_lock(home) as held:
        assert held.path == home / "learn.lock"


def test_a_second_run_in_the_same_process_is_refused(home: Path) -> None:
    with run_lock(home):
        with pytest.raises(RunInProgress) as caught:
            with run_lock(home):
                pass
        assert caught.value.pid == os.getpid()
    with run_lock(home):
        pass


def test_the_lock_file_is_private(home: Path) -> None:
    with run_lock(home) as held:
        assert held.path.stat().st_mode & 0o777 == 0o600
        assert home.stat().st_mode & 0o777 == 0o700
