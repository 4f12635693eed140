"""The Learning screen (F10) through Pilot, and ``learning.background``'s JSON lines, on a real SQLite store and the
real learning job in a real child process (no training: an empty data dir has nothing to learn). The chat runs on
the fake model: what the model says is not what these tests are about."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, ProgressBar, Static

from assistant.session import Session
from learning import background
from learning.background import STOPPED, WAITING, Event, parse_event
from learning.lock import run_lock
from learning.overview import runs as run_rows
from learning.overview import score_series
from storage.adapters import active_adapter, add_adapter, set_active, set_adapter_state
from storage.db import Store
from storage.learning import Watermarks, finish_run, list_runs, start_run
from storage.paths import adapters_dir
from tests.test_adapters import smollm2_base
from tests.test_tui import SIZE, Notes, record_notifications
from tui.app import AssistantApp
from tui.background_learn import ALREADY, LearnUpdate
from tui.screens.confirm import ConfirmScreen
from tui.screens.learning import LearningScreen
from tui.widgets.message import Reply
from tui.widgets.score_plot import score_plot
from tui.widgets.status_bar import StatusBar

NOTHING_NEW = "Nothing new to learn since the last run."
REFUSED = (
    "Adapter v2 was not promoted, so adapter v1 stays: It got 60% of the general control questions right against "
    "the base model's 90%, more than 5 points worse."
)


async def until(pilot: Pilot, condition: Callable[[], object], rounds: int = 12000) -> None:
    """Wait for a condition (the bound only stops a broken test, far beyond what a busy machine needs)."""
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("the condition never became true")


def scores(personal: float, controls: float) -> dict[str, float]:
    return {"personal": personal, "controls": controls, "perplexity": 12.5}


def seed_runs(store: Store, promoted: int, refused: int) -> None:
    """Three finished runs as the job records them: promoted, refused (adapters of these versions), nothing new."""
    first = start_run(store)
    finish_run(store, first, "promoted", Watermarks(5, 1, 0, ""), promoted, {
        "status": "promoted", "message": "Adapter v1 is now active: It answers 80% of the held-out questions.",
        "selection": {"statements": 4, "facts": 1, "pairs": 2},
        "evaluation": {"base": scores(0.0, 0.9), "candidate": scores(0.8, 0.88)}, "losses": [2.5, 2.0, 1.4],
    })  # fmt: skip
    second = start_run(store)
    finish_run(store, second, "refused", Watermarks(9, 1, 0, ""), refused, {
        "status": "refused", "message": REFUSED, "selection": {"statements": 3, "facts": 0, "pairs": 0},
        "evaluation": {"base": scores(0.0, 0.9), "candidate": scores(0.9, 0.6)},
    })  # fmt: skip
    third = start_run(store)
    finish_run(store, third, "nothing", Watermarks(9, 1, 0, ""), None, {"status": "nothing", "message": NOTHING_NEW})


def seed_adapters(store: Store, home: Path) -> tuple[int, int]:
    """Two adapters of the bundled model, files present: v1 active, v2 refused (files are only checked to exist)."""
    base, _ = smollm2_base(store, home)
    versions = []
    for name, metrics in (
        ("v1.gguf", {"candidate_personal": 0.8, "candidate_controls": 0.88, "candidate_perplexity": 12.6}),
        ("v2.gguf", {"candidate_personal": 0.9, "candidate_controls": 0.6, "candidate_perplexity": 14.0}),
    ):
        path = adapters_dir(home) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"GGUF adapter stand-in")
        versions.append(add_adapter(store, base, name, metrics=metrics))
    set_active(store, versions[0])
    set_adapter_state(store, versions[1], "refused")
    return versions[0], versions[1]


def cells(table: DataTable, column: int) -> list[str]:
    return [str(table.get_row_at(i)[column]) for i in range(table.row_count)]


async def open_learning(pilot: Pilot, app: AssistantApp) -> LearningScreen:
    await pilot.press("f10")
    screen = app.screen
    assert isinstance(screen, LearningScreen)
    await until(pilot, lambda: screen.loaded)
    await pilot.pause()
    return screen


# -- learning.background: the child's JSON lines --------------------------------------------------------------------


def run_child(home: Path, *extra: str) -> tuple[int, list[dict[str, object]]]:
    done = subprocess.run([*background.command(home), *extra], capture_output=True, text=True, env=os.environ)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def test_the_child_on_an_empty_home_writes_one_done_event_saying_nothing_new(home: Path) -> None:
    code, events = run_child(home)
    assert code == 0
    assert [e["event"] for e in events] == ["done"]
    report = events[0]["report"]
    assert isinstance(report, dict)
    assert report["status"] == "nothing" and report["message"] == NOTHING_NEW
    event = parse_event(json.dumps(events[0]))
    assert event is not None and event.kind == "done" and event.report["status"] == "nothing"


def test_the_child_refuses_while_another_run_holds_the_lock(home: Path) -> None:
    with run_lock(home):
        code, events = run_child(home)
    assert code == 1
    assert [e["event"] for e in events] == ["error"]
    assert "already in progress" in str(events[0]["message"])


def test_sigterm_stops_the_child_with_one_sentence(home: Path, tmp_path: Path) -> None:
    child = subprocess.Popen(
        background.command(home, wait_for=tmp_path / "never"), stdout=subprocess.PIPE, text=True, env=os.environ
    )
    assert child.stdout is not None
    first = parse_event(child.stdout.readline())
    assert first is not None and (first.kind, first.text) == ("step", WAITING)
    assert os.getpriority(os.PRIO_PROCESS, child.pid) >= min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)  # niced
    child.terminate()
    rest = [parse_event(line) for line in child.stdout]
    assert child.wait() == 1
    assert [(e.kind, e.text) for e in rest if e is not None] == [("error", STOPPED)]


def test_the_job_s_steps_and_training_progress_become_lines(home: Path) -> None:
    # The job's callbacks, driven by a stand-in for learning.job.run (a real run trains for minutes): each becomes
    # one line, and what a library prints on stdout does not get among them.
    script = (
        "import sys\n"
        "import learning.job\n"
        "from learning.background import main\n"
        "from learning.job import RunReport\n"
        "from learning.train import Progress\n"
        "def run(home, on_step, on_progress):\n"
        "    on_step('training')\n"
        "    print('a library talking on stdout')\n"
        "    on_progress(Progress(step=3, total_steps=40, epoch=0.1, loss=2.34567, learning_rate=5e-4, tokens=320,\n"
        "                         tokens_per_s=410.04, elapsed_s=2.0, peak_rss_mb=900.0))\n"
        "    return RunReport('refused', 'Adapter v2 was not promoted.', adapter_version=2)\n"
        "learning.job.run = run\n"
        "sys.exit(main(['--home', sys.argv[1]]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(home)], capture_output=True, text=True, env=os.environ)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[:2] == [
        {"event": "step", "text": "training"},
        {"event": "progress", "step": 3, "total": 40, "loss": 2.3457, "tokens_per_s": 410.0},
    ]
    assert events[2]["event"] == "done" and len(events) == 3
    assert "a library talking on stdout" in done.stderr


def test_stray_lines_are_not_events() -> None:
    assert parse_event("Loading weights...") is None
    assert parse_event('{"event": "unknown"}') is None
    progress = parse_event('{"event": "progress", "step": 3, "total": 40, "loss": 2.5, "tokens_per_s": 410.0}')
    assert progress is not None and (progress.step, progress.total, progress.loss) == (3, 40, 2.5)


# -- the screen -------------------------------------------------------------------------------------------------------


def test_runs_and_scores_are_read_from_the_reports(store: Store, home: Path) -> None:
    seed_runs(store, *seed_adapters(store, home))
    rows = run_rows(store)
    assert [r.status for r in rows] == ["nothing", "refused", "promoted"]
    assert rows[2].selected == 7 and rows[2].probe == 0.8 and rows[2].losses == (2.5, 2.0, 1.4)
    assert score_series(rows) == ([0.8, 0.9], [0.88, 0.6])  # oldest first, scored runs only
    plot = score_plot([1.0], [0.0], height=2).plain.splitlines()
    assert plot[0] == "100%│█  " and plot[1] == "  0%│█  "  # a full bar, an empty one


async def test_the_screen_lists_seeded_runs_scores_and_adapters(
    fake_session: Session, store: Store, home: Path
) -> None:
    first, second = seed_adapters(store, home)
    seed_runs(store, first, second)
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_learning(pilot, app)
        runs = screen.query_one("#runs", DataTable)
        assert cells(runs, 2) == ["nothing", "refused v2", "promoted v1"]
        assert cells(runs, 3) == ["0", "3", "7"]  # selected
        assert cells(runs, 4) == ["–", "90%", "80%"] and cells(runs, 5) == ["–", "60%", "88%"]
        runs.move_cursor(row=1)
        await pilot.pause()
        detail = str(screen.query_one("#run-detail", Static).render())
        assert "general 60% (base 90%)" in detail and "more than 5 points worse" in detail  # the gate's reason
        plot = str(screen.query_one("#scores", Static).render())
        assert "about you" in plot and "2 scored runs" in plot and "█" in plot
        assert "training loss 2.500 -> 1.400 over 3 steps" in str(screen.query_one("#loss", Static).render())

        adapters = screen.query_one("#adapters", DataTable)
        assert cells(adapters, 1) == [f"v{second}", f"v{first}"]
        assert cells(adapters, 3) == ["refused", "active"] and cells(adapters, 0) == ["", "●"]
        assert "about you 90%" in cells(adapters, 4)[0] and cells(adapters, 5) == ["this one", "this one"]


async def test_activate_and_rollback_change_the_active_adapter(fake_session: Session, store: Store, home: Path) -> None:
    first, second = seed_adapters(store, home)
    base, _ = smollm2_base(store, home)
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_learning(pilot, app)
        adapters = screen.query_one("#adapters", DataTable)
        adapters.focus()
        adapters.move_cursor(row=0)  # the newest: v2
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # asked first: "no" changes nothing
        found = active_adapter(store, base)
        assert found is not None and found.version == first

        await pilot.press("a")
        await pilot.press("y")
        found = active_adapter(store, base)
        assert found is not None and found.version == second
        await until(pilot, lambda: cells(adapters, 3) == ["active", "inactive"])  # the list is read again

        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        found = active_adapter(store, base)
        assert found is not None and found.version == first  # back to the newest earlier one that can serve
        await pilot.press("r", "y")
        assert active_adapter(store, base) is None  # and then to the base model
        await until(pilot, lambda: cells(adapters, 3) == ["inactive", "inactive"])


async def test_learn_now_with_nothing_new_says_so(fake_session: Session, store: Store) -> None:
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        screen = await open_learning(pilot, app)
        await pilot.press("l")
        await until(pilot, lambda: NOTHING_NEW in notes.texts())
        assert not app.learner.running
        assert [r.status for r in list_runs(store)] == ["nothing"]  # the real job ran, in its own process
        await until(pilot, lambda: cells(screen.query_one("#runs", DataTable), 2) == ["nothing"])
        assert NOTHING_NEW in str(screen.query_one("#learn-step", Static).render())
        assert app.main.query_one(StatusBar).learning == ""


async def test_the_chat_stays_usable_while_learning_runs_and_cancel_stops_it(
    fake_session: Session, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "start"  # never created: the child waits until the test cancels it
    real = background.command
    monkeypatch.setattr(background, "command", lambda home: real(home, wait_for=gate))
    app = AssistantApp(session=fake_session)
    async with app.run_test(size=SIZE) as pilot:
        notes: Notes = record_notifications(app)
        await open_learning(pilot, app)
        await pilot.press("l")
        await until(pilot, lambda: app.learner.step == WAITING)
        assert app.learner.running
        await pilot.press("l")  # a second "learn now" is refused
        assert ALREADY in notes.texts("warning")
        # A training step as the child reports it: the bar, the loss and the speed on the screen and in the status bar.
        app.post_message(LearnUpdate(Event("progress", step=3, total=40, loss=2.31, tokens_per_s=410.0)))
        await until(pilot, lambda: app.learner.progress is not None)
        screen = app.screen
        assert isinstance(screen, LearningScreen)
        bar = screen.query_one("#learn-progress", ProgressBar)
        assert (bar.total, bar.progress) == (40, 3)
        assert "training 3/40 · loss 2.310 · 410 tok/s" in str(screen.query_one("#learn-step", Static).render())
        await pilot.press("escape")
        assert app.main.query_one(StatusBar).learning == "3/40 loss 2.31"  # the status bar says a run goes on

        await pilot.press(*"hello")  # the prompt takes keys and a message gets its reply meanwhile
        assert app.main.prompt.text == "hello"
        await pilot.press("enter")
        await until(pilot, lambda: not app.main.generating and app.main.chat.query(Reply))
        assert "Hello from the fake model." in app.main.chat.query(Reply).last().content
        assert app.learner.running

        await pilot.press("f10")
        assert isinstance(app.screen, LearningScreen)
        await pilot.press("x")  # cancel: SIGTERM
        await until(pilot, lambda: not app.learner.running)
        assert STOPPED in notes.texts("information")
        assert app.main.query_one(StatusBar).learning == ""

        await pilot.press("l")  # one more, left running when the app closes
        await until(pilot, lambda: app.learner.step == WAITING)
        child = app.learner.process
    assert child is not None and child.poll() is not None  # closing the app stopped it: no training left untended
