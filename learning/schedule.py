"""The nightly schedule of `assistant learn`: a systemd user timer where a systemd user manager runs, else a crontab
entry; a launchd agent on macOS.

What is scheduled is this install's own `assistant` script by absolute path (cron and systemd start it with
almost no environment) plus ``learn``, with ``ASSISTANT_HOME`` when the data dir is not the default one. Installing
again replaces what is there (one schedule, never two); uninstalling removes exactly what installing wrote: the
two unit files, the crontab lines carrying the marker comment, or the agent's plist. The systemd timer is
``Persistent``, so a night the computer was off runs at the next start.

Everything outside this process goes through a :class:`Platform` (which system, which environment: ``PATH`` finds
``systemctl``, ``crontab`` and ``launchctl``; ``XDG_CONFIG_HOME`` and ``HOME`` place the files), so tests drive
it with fake tools and never touch the real user's crontab or systemd. The functions return data and raise one
sentence (``ScheduleError``, ``InputError`` for a bad time); the `assistant learn` command prints them.
"""

from __future__ import annotations

import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from assistant.errors import AssistantError, InputError
from storage.paths import APP_NAME, HOME_ENV, data_dir

Kind = Literal["systemd", "cron", "launchd"]
UNIT = "assistant-learn"
LAUNCHD_LABEL = "org.assistant.learn"
MARKER = "# assistant-learn (written by `assistant learn --install-schedule`)"
_AT = re.compile(r"^(\d{1,2}):(\d{2})$")


class ScheduleError(AssistantError):
    """The schedule could not be read, written or removed."""


@dataclass(slots=True)
class Schedule:
    """Where the nightly run stands."""

    kind: str  # systemd, cron or launchd: where it is (or would be) installed
    installed: bool
    at: str | None = None  # "03:00"
    command: str | None = None  # what runs, as written
    files: list[str] = field(default_factory=list)  # what install wrote (the crontab itself is not a file of ours)
    enabled: bool | None = None  # systemd/launchd: whether the manager has it loaded; None when not known
    next_run: str | None = None  # systemd's next elapse, when it says

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(slots=True)
class Platform:
    """The system the schedule is written for: the real user's by default, a test's when given."""

    system: str = sys.platform
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def which(self, tool: str) -> str | None:
        return shutil.which(tool, path=self.env.get("PATH", os.defpath))

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        tool = self.which(args[0])
        if tool is None:
            raise ScheduleError(f"`{args[0]}` was not found; the schedule cannot be changed here.")
        try:
            return subprocess.run(
                [tool, *args[1:]], input=input, capture_output=True, text=True, env=dict(self.env), timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ScheduleError(f"`{' '.join(args)}` could not run ({exc}).") from exc

    def home(self) -> Path:
        return Path(self.env.get("HOME") or Path.home())

    def systemd_dir(self) -> Path:
        config = self.env.get("XDG_CONFIG_HOME") or str(self.home() / ".config")
        return Path(config) / "systemd" / "user"

    def launch_agents(self) -> Path:
        return self.home() / "Library" / "LaunchAgents"


def parse_at(at: str) -> tuple[int, int]:
    """``"HH:MM"`` (24-hour) as (hour, minute)."""
    match = _AT.match(at.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise InputError(f"Give the time as HH:MM on the 24-hour clock (e.g. 03:00), not '{at}'.")
    return int(match[1]), int(match[2])


def default_program() -> Path:
    """This install's `assistant` script: beside the running Python (a venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "assistant"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside.absolute()
    found = shutil.which("assistant")
    if found is None:
        raise ScheduleError("The `assistant` command was not found beside this Python or on PATH; reinstall it.")
    return Path(found).absolute()


def _environment(home: Path | None) -> dict[str, str]:
    """ASSISTANT_HOME for the scheduled run, when the data dir is not the one it would find by itself."""
    import platformdirs

    home = (home or data_dir()).expanduser().absolute()
    default = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)).absolute()
    return {} if home == default else {HOME_ENV: str(home)}


def detect(platform: Platform) -> Kind:
    """Where a schedule goes on this system."""
    if platform.system == "darwin":
        return "launchd"
    if platform.which("systemctl") and platform.run("systemctl", "--user", "show-environment").returncode == 0:
        return "systemd"
    if platform.which("crontab"):
        return "cron"
    raise ScheduleError(
        "Neither a systemd user manager nor crontab is available here; run `assistant learn` from your own scheduler."
    )


def _check(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise ScheduleError(f"{what} failed: {said[0] if said else f'exit status {done.returncode}'}.")


# -- systemd ----------------------------------------------------------------------------------------------------------


def _unit_quote(text: str) -> str:
    text = text.replace("%", "%%")  # systemd expands %-specifiers
    if re.search(r'[\s"\'\\;]', text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def systemd_units(program: Path, hour: int, minute: int, env: Mapping[str, str]) -> dict[str, str]:
    """The service and timer files, by name."""
    environment = "".join(f"Environment={_unit_quote(f'{k}={v}')}\n" for k, v in env.items())
    service = (
        "[Unit]\n"
        "Description=assistant: learn from the day's conversations\n"
        f"{MARKER}\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"{environment}"
        f"ExecStart={_unit_quote(str(program))} learn\n"
        "Nice=10\n"
        "IOSchedulingClass=idle\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=assistant: learn every night at {hour:02d}:{minute:02d}\n"
        f"{MARKER}\n\n"
        "[Timer]\n"
        f"OnCalendar=*-*-* {hour:02d}:{minute:02d}:00\n"
        "Persistent=true\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {f"{UNIT}.service": service, f"{UNIT}.timer": timer}


def _install_systemd(platform: Platform, program: Path, hour: int, minute: int, env: Mapping[str, str]) -> None:
    folder = platform.systemd_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in systemd_units(program, hour, minute, env).items():
        _write(folder / name, text)
    _check(platform.run("systemctl", "--user", "daemon-reload"), "systemctl --user daemon-reload")
    _check(platform.run("systemctl", "--user", "enable", "--now", f"{UNIT}.timer"), f"Enabling {UNIT}.timer")


def _systemd_files(platform: Platform) -> list[Path]:
    folder = platform.systemd_dir()
    return [p for p in (folder / f"{UNIT}.timer", folder / f"{UNIT}.service") if p.exists() and _ours(p)]


def _uninstall_systemd(platform: Platform) -> list[str]:
    files = _systemd_files(platform)
    if platform.which("systemctl"):
        platform.run("systemctl", "--user", "disable", "--now", f"{UNIT}.timer")  # not loaded: nothing to stop
    for path in files:
        path.unlink(missing_ok=True)
    if platform.which("systemctl"):
        platform.run("systemctl", "--user", "daemon-reload")
    return [str(p) for p in files]


def _systemd_status(platform: Platform) -> Schedule:
    folder = platform.systemd_dir()
    timer, service = folder / f"{UNIT}.timer", folder / f"{UNIT}.service"
    if not (timer.exists() and _ours(timer)):
        return Schedule("systemd", False)
    at = _line_value(timer, "OnCalendar=")
    command = _line_value(service, "ExecStart=") if service.exists() else None
    enabled = next_run = None
    if platform.which("systemctl"):
        state = platform.run("systemctl", "--user", "is-enabled", f"{UNIT}.timer")
        enabled = state.stdout.strip() == "enabled"
        shown = platform.run("systemctl", "--user", "show", f"{UNIT}.timer", "--property=NextElapseUSecRealtime")
        if shown.returncode == 0:
            next_run = shown.stdout.strip().partition("=")[2] or None
    return Schedule(
        "systemd",
        True,
        at=at.split()[-1][:5] if at else None,
        command=command,
        files=[str(timer), str(service)],
        enabled=enabled,
        next_run=next_run,
    )


# -- cron -------------------------------------------------------------------------------------------------------------


def cron_line(program: Path, hour: int, minute: int, env: Mapping[str, str]) -> str:
    """The crontab entry (cron reads % as a newline: escaped)."""
    assignments = "".join(f"{k}={shlex.quote(v)} " for k, v in env.items())
    command = f"{assignments}{shlex.quote(str(program))} learn".replace("%", "\\%")
    return f"{minute} {hour} * * * {command} {MARKER}"


def _read_crontab(platform: Platform) -> str:
    done = platform.run("crontab", "-l")
    if done.returncode != 0:
        if "no crontab" in (done.stderr + done.stdout).lower():
            return ""
        _check(done, "Reading the crontab")
    return done.stdout


def _write_crontab(platform: Platform, text: str) -> None:
    _check(platform.run("crontab", "-", input=text), "Writing the crontab")


def _without_ours(text: str) -> list[str]:
    return [line for line in text.splitlines() if MARKER not in line]


def _install_cron(platform: Platform, program: Path, hour: int, minute: int, env: Mapping[str, str]) -> None:
    lines = _without_ours(_read_crontab(platform))
    _write_crontab(platform, "\n".join([*lines, cron_line(program, hour, minute, env)]) + "\n")


def _uninstall_cron(platform: Platform) -> bool:
    text = _read_crontab(platform)
    if MARKER not in text:
        return False
    lines = _without_ours(text)
    _write_crontab(platform, "\n".join(lines) + "\n" if lines else "")
    return True


def _cron_status(platform: Platform) -> Schedule:
    ours = [line for line in _read_crontab(platform).splitlines() if MARKER in line]
    if not ours:
        return Schedule("cron", False)
    minute, hour, *_ = ours[0].split()
    command = ours[0].split(None, 5)[5].replace(MARKER, "").strip()
    return Schedule("cron", True, at=f"{int(hour):02d}:{int(minute):02d}", command=command)


# -- launchd ----------------------------------------------------------------------------------------------------------


def launchd_plist(program: Path, hour: int, minute: int, env: Mapping[str, str]) -> bytes:
    agent: dict[str, object] = {
        "Label": LAUNCHD_LABEL,
        "Comment": MARKER,
        "ProgramArguments": [str(program), "learn"],
        "StartCalendarInterval": {"Hour": hour, "Minute": minute},
        "ProcessType": "Background",
        "LowPriorityIO": True,
    }
    if env:
        agent["EnvironmentVariables"] = dict(env)
    return plistlib.dumps(agent)


def _plist(platform: Platform) -> Path:
    return platform.launch_agents() / f"{LAUNCHD_LABEL}.plist"


def _domain(platform: Platform) -> str:
    return f"gui/{platform.env.get('UID') or os.getuid()}"


def _install_launchd(platform: Platform, program: Path, hour: int, minute: int, env: Mapping[str, str]) -> None:
    path = _plist(platform)
    path.parent.mkdir(parents=True, exist_ok=True)
    platform.run("launchctl", "bootout", f"{_domain(platform)}/{LAUNCHD_LABEL}")  # an earlier one, if loaded
    path.write_bytes(launchd_plist(program, hour, minute, env))
    _check(platform.run("launchctl", "bootstrap", _domain(platform), str(path)), "Loading the launchd agent")


def _uninstall_launchd(platform: Platform) -> list[str]:
    path = _plist(platform)
    if not path.exists() or not _ours(path):
        return []
    if platform.which("launchctl"):
        platform.run("launchctl", "bootout", f"{_domain(platform)}/{LAUNCHD_LABEL}")
    path.unlink(missing_ok=True)
    return [str(path)]


def _launchd_status(platform: Platform) -> Schedule:
    path = _plist(platform)
    if not path.exists() or not _ours(path):
        return Schedule("launchd", False)
    agent = plistlib.loads(path.read_bytes())
    when = agent.get("StartCalendarInterval", {})
    enabled = None
    if platform.which("launchctl"):
        enabled = platform.run("launchctl", "print", f"{_domain(platform)}/{LAUNCHD_LABEL}").returncode == 0
    return Schedule(
        "launchd",
        True,
        at=f"{when.get('Hour', 0):02d}:{when.get('Minute', 0):02d}",
        command=shlex.join(agent.get("ProgramArguments", [])),
        files=[str(path)],
        enabled=enabled,
    )


# -- files ------------------------------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def _ours(path: Path) -> bool:
    try:
        return MARKER.encode() in path.read_bytes()
    except OSError:
        return False


def _line_value(path: Path, prefix: str) -> str | None:
    for line in path.read_text().splitlines():
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return None


# -- the three actions ------------------------------------------------------------------------------------------------


def install(
    at: str = "03:00", *, home: Path | None = None, program: Path | None = None, platform: Platform | None = None
) -> Schedule:
    """Run `assistant learn` every night at ``at`` (HH:MM); installing again replaces the earlier schedule."""
    hour, minute = parse_at(at)
    platform = platform or Platform()
    program = program or default_program()
    env = _environment(home)
    kind = detect(platform)
    _uninstall_all(platform, keep=kind)  # a schedule of another kind (cron before a systemd login) would run twice
    {"systemd": _install_systemd, "cron": _install_cron, "launchd": _install_launchd}[kind](
        platform, program, hour, minute, env
    )
    return status(platform=platform)


def _uninstall_all(platform: Platform, keep: Kind | None = None) -> list[str]:
    removed: list[str] = []
    if keep != "systemd" and _systemd_files(platform):
        removed += _uninstall_systemd(platform)
    if keep != "cron" and platform.system != "darwin" and platform.which("crontab") and _uninstall_cron(platform):
        removed.append("crontab entry")
    if keep != "launchd" and platform.system == "darwin":
        removed += _uninstall_launchd(platform)
    return removed


def uninstall(*, platform: Platform | None = None) -> list[str]:
    """Remove the nightly run, whichever kind install wrote; what was removed (empty: there was none)."""
    return _uninstall_all(platform or Platform())


def status(*, platform: Platform | None = None) -> Schedule:
    """Whether a nightly run is installed, when, and what it runs."""
    platform = platform or Platform()
    if platform.system == "darwin":
        return _launchd_status(platform)
    found = _systemd_status(platform)
    if found.installed:
        return found
    if platform.which("crontab"):
        found = _cron_status(platform)
        if found.installed:
            return found
    try:
        return Schedule(detect(platform), False)
    except ScheduleError:
        return Schedule("none", False)
