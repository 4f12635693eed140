"""F10: what the assistant learned. Past runs (what each selected, its scores, why it was promoted or refused), the
scores over time, the adapters (activate, roll back: each asks first) and "learn now" with its progress.

"Learn now" runs in a child process owned by the app (``tui.background_learn``), so the run goes on when this
screen closes and the chat stays usable. Runs and adapters are read in a thread worker: finding the model in use
(to know which adapters fit it) may assemble the bundled model's file the first time. Activating or rolling back
is one SQLite write; the chat picks the change up at its next message (the status bar shows it then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, ProgressBar, Static

from assistant.errors import AssistantError
from tui.widgets.score_plot import score_plot

if TYPE_CHECKING:
    from assistant.adapters import AdapterRow
    from assistant.session import Session
    from learning.overview import RunRow
    from tui.background_learn import BackgroundLearn

REASON_CHARS = 48
STATUS_STYLES = {
    "promoted": "bold green",
    "refused": "yellow",
    "nothing": "dim",
    "failed": "bold red",
    "running": "bold cyan",
}
STATE_STYLES = {"active": "bold green", "refused": "yellow", "removed": "dim", "candidate": "cyan"}
NO_SCORES = "No scores yet: a run that trains an adapter scores it on held-out questions about you and general ones."


def share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def short(text: str, limit: int = REASON_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def adapter_scores(metrics: dict[str, Any]) -> str:
    """An adapter's scores in one cell: about you, general, perplexity (else its first few numbers)."""
    named = (("candidate_personal", "about you", share), ("candidate_controls", "general", share))
    parts = [f"{word} {show(metrics[key])}" for key, word, show in named if isinstance(metrics.get(key), int | float)]
    if isinstance(metrics.get("candidate_perplexity"), int | float):
        parts.append(f"ppl {metrics['candidate_perplexity']:.2f}")
    if not parts:
        numbers = [(k, v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)]
        parts = [f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in numbers[:3]]
    return " · ".join(parts) or "–"


def training_line(losses: tuple[float, ...]) -> str:
    """A run's loss curve in one line: first and last loss, and its moving average as a sparkline."""
    from learning.report import smooth, sparkline

    return f"loss {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} steps  {sparkline(smooth(losses), 40)}"


def run_detail(run: RunRow) -> str:
    """The highlighted run in full: its scores against the base model's, and its sentence."""
    scores = ""
    if run.probe is not None or run.control is not None:
        scores = (
            f"About you {share(run.probe)} (base {share(run.base_probe)}), general {share(run.control)} "
            f"(base {share(run.base_control)}). "
        )
    return f"Run {run.id}: {scores}{run.reason}".strip()


class LearningScreen(ModalScreen[None]):
    """Runs, scores, adapters and "learn now"."""

    AUTO_FOCUS = "#runs"
    BINDINGS = [
        Binding("escape,f10", "close", "Close"),
        Binding("l", "learn", "Learn now"),
        Binding("x", "cancel_run", "Cancel run"),
        Binding("a", "activate", "Activate"),
        Binding("r", "rollback", "Roll back"),
    ]

    class Loaded(Message):
        def __init__(self, runs: list[RunRow], adapters: list[AdapterRow], base: str | None, error: str | None) -> None:
            super().__init__()
            self.runs = runs
            self.adapters = adapters
            self.base = base
            self.error = error

    def __init__(self, session: Session, learner: BackgroundLearn) -> None:
        super().__init__()
        self.session = session
        self.learner = learner
        self.runs: list[RunRow] = []
        self.adapters: list[AdapterRow] = []
        self.base: str | None = None  # the base model id of the model in use (None: not known)
        self.loaded = False  # the first load has arrived
        self._was_running = learner.running

    def compose(self) -> ComposeResult:
        # The actions first, the scores last: on a short terminal the dialog scrolls, and the buttons stay in view.
        with VerticalScroll(id="dialog", classes="wide learning"):
            yield Static("Learning", classes="title")
            with Horizontal(id="learn-bar"):
                yield Button("Learn now", id="learn", variant="primary", compact=True)
                yield Button("Cancel run", id="cancel-run", variant="error", compact=True)
                yield Button("Activate", id="activate", compact=True)
                yield Button("Roll back", id="rollback", compact=True)
            with Horizontal(id="learn-progress-bar"):
                yield ProgressBar(id="learn-progress", show_eta=False)
                yield Static("", id="learn-step")
            yield Static(
                "L: learn now, in the background (close this and chat meanwhile) · X: cancel it · A: activate the "
                "highlighted adapter · R: roll back · Esc: close",
                classes="hint",
            )
            yield Static("Runs", classes="section")
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            yield Static("", id="run-detail")
            yield Static("Adapters", classes="section")
            yield DataTable(id="adapters", cursor_type="row")
            yield Static("Scores over time", classes="section")
            yield Static(NO_SCORES, id="scores")
            yield Static("", id="loss")

    def on_mount(self) -> None:
        runs = self.query_one("#runs", DataTable)
        runs.add_columns("Run", "Started", "Status", "Selected", "About you", "General", "Took", "Why")
        adapters = self.query_one("#adapters", DataTable)
        adapters.add_columns("", "Adapter", "Created", "State", "Scores", "Model")
        self.learn_changed()
        self.load()

    # -- runs and adapters ----------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="learning-load")
    def load(self) -> None:
        from assistant.adapters import adapter_rows, base_model_of
        from assistant.models import resolve
        from learning.overview import runs

        session, error, base = self.session, None, None
        found_runs: list[RunRow] = []
        found_adapters: list[AdapterRow] = []
        try:
            found_runs = runs(session.store)
            try:
                spec = resolve(session.store, session.model_name, session.models_dir)
                if spec.path is not None:
                    base = base_model_of(spec.name, spec.path)
            except AssistantError as exc:  # adapters are listed anyway; none can be activated for now
                error = f"The model in use could not be found, so no adapter can be activated now: {exc}"
            found_adapters = adapter_rows(session.store, base or "", session.home)
        except AssistantError as exc:
            error = str(exc)
        self.post_message(self.Loaded(found_runs, found_adapters, base, error))

    def on_learning_screen_loaded(self, message: Loaded) -> None:
        self.runs, self.adapters, self.base = message.runs, message.adapters, message.base
        if message.error:
            self.notify(message.error, severity="error", markup=False)
        self.show_runs()
        self.show_adapters()
        self.loaded = True

    def show_runs(self) -> None:
        from learning.overview import score_series

        table = self.query_one("#runs", DataTable)
        table.clear()
        for run in self.runs:
            status = Text(run.status, style=STATUS_STYLES.get(run.status, ""))
            if run.adapter_version is not None:
                status.append(f" v{run.adapter_version}", style="dim")
            table.add_row(
                str(run.id), run.started_at[:16].replace("T", " "), status, str(run.selected), share(run.probe),
                share(run.control), duration(run.seconds), short(run.reason), key=str(run.id),
            )  # fmt: skip
        if not self.runs:
            self.query_one("#run-detail", Static).update(Text("No learning runs yet: L learns now.", style="dim"))
        probes, controls = score_series(self.runs)
        self.query_one("#scores", Static).update(score_plot(probes, controls) if probes else NO_SCORES)
        trained = next((r for r in self.runs if r.losses), None)
        loss = f"Run {trained.id}'s training {training_line(trained.losses)}" if trained else ""
        self.query_one("#loss", Static).update(Text(loss, style="dim"))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "runs" and 0 <= event.cursor_row < len(self.runs):
            self.query_one("#run-detail", Static).update(Text(run_detail(self.runs[event.cursor_row])))

    def show_adapters(self) -> None:
        table = self.query_one("#adapters", DataTable)
        table.clear()
        for row in self.adapters:
            a = row.adapter
            mark = Text("●", style="bold green") if a.state == "active" and row.current_base else Text("")
            state = Text(a.state + ("" if row.file_present or a.state == "removed" else " (file missing)"))
            state.stylize(STATE_STYLES.get(a.state, ""))
            table.add_row(
                mark, f"v{a.version}", a.created_at[:16].replace("T", " "), state, adapter_scores(a.metrics),
                "this one" if row.current_base else "another model", key=str(a.version),
            )  # fmt: skip
        if not self.adapters:
            table.add_row("", "none yet", "", "", "the base model answers", "", key="none")

    def highlighted_adapter(self) -> AdapterRow | None:
        table = self.query_one("#adapters", DataTable)
        if not self.adapters:
            return None
        return self.adapters[min(max(table.cursor_row, 0), len(self.adapters) - 1)]

    # -- activate and roll back -----------------------------------------------------------------------------

    def action_activate(self) -> None:
        from tui.screens.confirm import ConfirmScreen

        row = self.highlighted_adapter()
        if row is None:
            self.notify("There is no adapter yet: learning makes one (L).", severity="warning")
            return
        version = row.adapter.version
        if row.adapter.state == "active":
            self.notify(f"Adapter v{version} is the active one already.")
            return

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.activate(version)

        question = f"Answer with adapter v{version} from your next message on? The one active now is kept, inactive."
        self.app.push_screen(ConfirmScreen(question, yes="Activate"), done)

    def activate(self, version: int) -> None:
        from assistant.adapters import activate

        if self.base is None:
            self.notify("The model in use is not known yet, so no adapter can be activated.", severity="warning")
            return
        try:
            activate(self.session.store, version, self.base, self.session.home)
        except AssistantError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(f"Adapter v{version} is active: your next message uses it.")
        self.load()

    def action_rollback(self) -> None:
        from tui.screens.confirm import ConfirmScreen

        active = next((r for r in self.adapters if r.adapter.state == "active" and r.current_base), None)
        if active is None:
            self.notify("No adapter is active for this model: the base model answers already.")
            return
        question = (
            f"Roll back from adapter v{active.adapter.version}? The newest earlier adapter that can serve answers "
            "from your next message on, else the base model."
        )

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.rollback()

        self.app.push_screen(ConfirmScreen(question, yes="Roll back"), done)

    def rollback(self) -> None:
        from assistant.adapters import rollback

        if self.base is None:
            return
        try:
            before, now = rollback(self.session.store, self.base, self.session.home)
        except AssistantError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        if before is not None:
            to = f"adapter v{now.version}" if now is not None else "the base model"
            self.notify(f"Rolled back from adapter v{before.version}: {to} answers from your next message.")
        self.load()

    # -- learn now ------------------------------------------------------------------------------------------

    def action_learn(self) -> None:
        try:
            refused = self.learner.start(self.session.home)
        except OSError as exc:
            self.notify(f"The learning run could not start ({exc.strerror or exc}).", severity="error", markup=False)
            return
        if refused:
            self.notify(refused, severity="warning", markup=False)
        self.learn_changed()

    def action_cancel_run(self) -> None:
        if not self.learner.cancel():
            self.notify("No learning run is in progress.")

    def learn_changed(self) -> None:
        """The background run moved on (or started, or ended): show it; reload once it ends."""
        learner = self.learner
        running = learner.running
        self.query_one("#learn", Button).disabled = running
        self.query_one("#cancel-run", Button).disabled = not running
        bar = self.query_one("#learn-progress", ProgressBar)
        bar.display = running
        step = self.query_one("#learn-step", Static)
        progress = learner.progress
        if running and progress is not None and progress.total:
            bar.update(total=progress.total, progress=progress.step)
            loss = f" · loss {progress.loss:.3f}" if progress.loss is not None else ""
            speed = f" · {progress.tokens_per_s:.0f} tok/s" if progress.tokens_per_s else ""
            step.update(f"training {progress.step}/{progress.total}{loss}{speed}")
        elif running:
            bar.update(total=None)
            step.update(f"{learner.step or 'running'}…")
        elif learner.last is not None:
            last = learner.last
            said = str(last.report.get("message") or "") if last.kind == "done" else last.text
            step.update(Text(f"Last run: {said}", style="dim"))
        else:
            step.update("")
        if self._was_running and not running:
            self.load()
        self._was_running = running

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {
            "learn": self.action_learn,
            "cancel-run": self.action_cancel_run,
            "activate": self.action_activate,
            "rollback": self.action_rollback,
        }
        if event.button.id in actions:
            actions[event.button.id]()

    def action_close(self) -> None:
        self.dismiss(None)
