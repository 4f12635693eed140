"""Ctrl+R: what the assistant remembers. Facts (list, search, add, delete) and the earlier messages it can recall
(search by meaning and words, forget one after a confirmation).

Searching earlier messages embeds the query, and forgetting one touches the vector index, so both run in thread
workers and report back with Messages; the facts are a small SQLite table, read in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from assistant import memory_service
from assistant.errors import AssistantError

if TYPE_CHECKING:
    from assistant.session import Session
    from storage.facts import Fact
    from storage.memory import Recall

SNIPPETS = 20  # search results shown
SHOWN_CHARS = 200


def fact_prompt(fact: Fact) -> Text:
    text = Text()
    text.append(fact.created_at[:10], style="dim")
    text.append(f"  {fact.text}")
    return text


def snippet_prompt(recall: Recall) -> Text:
    text = Text()
    text.append(recall.created_at[:10], style="bold cyan")
    text.append(f" · score {recall.score:.2f} · {'you' if recall.role == 'user' else 'assistant'}\n", style="dim")
    shown = " ".join(recall.text.split())
    text.append(shown if len(shown) <= SHOWN_CHARS else shown[:SHOWN_CHARS].rstrip() + "…")
    return text


def count_note(found: int, pending: int) -> str:
    """The line under the search results: how many, and whether newer messages were searched by words only."""
    note = f"{found} found." if found else "Nothing found."
    if pending:
        note += f" {pending} newer messages are not indexed yet (found by their words only)."
    return note


def highlighted_index(options: OptionList, count: int) -> int | None:
    """The item Del acts on: the highlighted one, else the first (a list just tabbed into highlights nothing)."""
    if not count:
        return None
    if options.highlighted is None:
        options.highlighted = 0
    return min(options.highlighted, count - 1)


class MemoryScreen(ModalScreen[bool]):
    """Returns True if a message was forgotten (its conversation changed), else False."""

    AUTO_FOCUS = "#fact-query"
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("delete", "delete", "Delete", show=False, priority=True),
    ]

    class SnippetsFound(Message):
        def __init__(self, query: str, recalls: list[Recall], note: str, pending: int = 0) -> None:
            super().__init__()
            self.query = query
            self.recalls = recalls
            self.note = note
            self.pending = pending

    class Forgotten(Message):
        def __init__(self, message_id: int, error: str | None, adapter_off: str | None = None) -> None:
            super().__init__()
            self.message_id = message_id
            self.error = error
            self.adapter_off = adapter_off  # a learned adapter that knew the message was turned off

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.facts: list[Fact] = []
        self.snippets: list[Recall] = []
        self.pending = 0  # newer messages not indexed yet when the search ran
        self.forgot = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide memory"):
            yield Static("Memory", classes="title")
            yield Static("Facts, given to every reply while memory is on", classes="section")
            # Compact boxes and lists: both halves fit a 24-line terminal.
            yield Input(placeholder="Search the facts", id="fact-query", compact=True)
            yield OptionList(id="facts", compact=True)
            yield Input(placeholder="A new fact to remember (Enter adds it)", id="new-fact", compact=True)
            yield Static("Earlier conversations, recalled when relevant", classes="section")
            yield Input(placeholder="Search what can be recalled (Enter searches)", id="snippet-query", compact=True)
            yield OptionList(id="snippets", compact=True)
            yield Static("", id="snippet-note")
            yield Static(
                "Del: delete the highlighted fact / forget the message (asks first) · Tab: next box · Esc: close",
                classes="hint",
            )

    def on_mount(self) -> None:
        self.show_facts()

    # -- facts ----------------------------------------------------------------------------------------------

    def show_facts(self) -> None:
        query = self.query_one("#fact-query", Input).value
        try:
            self.facts = memory_service.list_facts(self.session.store, query)
        except AssistantError as exc:
            self.notify(str(exc), severity="error", markup=False)
            self.facts = []
        facts = self.query_one("#facts", OptionList)
        facts.clear_options()
        if self.facts:
            facts.add_options([Option(fact_prompt(f), id=str(f.id)) for f in self.facts])
        else:
            facts.add_option(
                Option(Text("no facts match" if query.strip() else "no facts yet", style="dim"), disabled=True)
            )

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "fact-query":
            self.show_facts()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "new-fact":
            self.add(event.value)
        elif event.input.id == "snippet-query":
            self.find_snippets(event.value)
        elif event.input.id == "fact-query":
            self.query_one("#facts", OptionList).focus()

    def add(self, text: str) -> None:
        try:
            fact_id = memory_service.remember(self.session.store, text)
        except AssistantError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        self.query_one("#new-fact", Input).clear()
        self.query_one("#fact-query", Input).clear()  # so the new fact is in the list
        self.show_facts()
        self.notify("Remembered." if self.session.use_memory else "Remembered (memory is off: Ctrl+G turns it on).")
        if warning := memory_service.save_warning(text, fact_id):
            self.notify(warning, severity="warning", markup=False, timeout=10)

    def delete_highlighted_fact(self) -> None:
        from tui.screens.confirm import ConfirmScreen

        facts = self.query_one("#facts", OptionList)
        index = highlighted_index(facts, len(self.facts))
        if index is None:
            return
        fact = self.facts[index]

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.delete_fact(fact, index)

        self.app.push_screen(ConfirmScreen(f"Delete the fact “{fact.text}”?"), done)

    def delete_fact(self, fact: Fact, index: int) -> None:
        facts = self.query_one("#facts", OptionList)
        try:
            adapter_off = memory_service.forget_fact(self.session.store, fact.id, memory=self.session.memory)
        except AssistantError as exc:
            self.notify(str(exc), severity="error", markup=False)
        else:
            self.notify("Fact deleted." + (f" {adapter_off}" if adapter_off else ""), markup=False)
        self.show_facts()
        if self.facts:
            facts.highlighted = min(index, len(self.facts) - 1)

    # -- earlier conversations ------------------------------------------------------------------------------

    def find_snippets(self, query: str) -> None:
        if not query.strip():
            return
        self.query_one("#snippet-note", Static).update("Searching…")
        self.search(query)

    @work(thread=True, exclusive=True, group="memory-search")
    def search(self, query: str) -> None:
        worker = get_current_worker()
        # Waits for the memory's warm-up (the embedder loads once, in seconds), here, off the UI thread.
        found = memory_service.search_memory(self.session, query, SNIPPETS)
        if found.memory_off:
            note = "Memory is off; Ctrl+G turns it on."
        elif found.unavailable:
            note = f"Memory is unavailable ({found.unavailable})."
        else:
            note = count_note(len(found.recalls), found.pending)
        if not worker.is_cancelled:
            self.post_message(self.SnippetsFound(query, found.recalls, note, found.pending))

    def on_memory_screen_snippets_found(self, message: SnippetsFound) -> None:
        self.snippets, self.pending = message.recalls, message.pending
        self.query_one("#snippet-note", Static).update(message.note)
        self.show_snippets()

    def show_snippets(self) -> None:
        snippets = self.query_one("#snippets", OptionList)
        highlighted = snippets.highlighted
        snippets.clear_options()
        snippets.add_options([Option(snippet_prompt(r), id=str(r.message_id)) for r in self.snippets])
        if self.snippets and highlighted is not None:
            snippets.highlighted = min(highlighted, len(self.snippets) - 1)

    def forget_highlighted_snippet(self) -> None:
        from tui.screens.confirm import ConfirmScreen

        snippets = self.query_one("#snippets", OptionList)
        index = highlighted_index(snippets, len(self.snippets))
        if index is None:
            return
        recall = self.snippets[index]
        day = recall.created_at[:10]
        who = "your message" if recall.role == "user" else "the assistant's reply"
        question = (
            f"Forget {who} of {day}? It is deleted from its conversation and will never be recalled again.\n\n"
            f"{' '.join(recall.text.split())[:SHOWN_CHARS]}"
        )

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.forget(recall.message_id)

        self.app.push_screen(ConfirmScreen(question, yes="Forget"), done)

    @work(thread=True, group="memory-forget")
    def forget(self, message_id: int) -> None:
        error: str | None = None
        adapter_off: str | None = None
        try:
            adapter_off = memory_service.forget_message(self.session.store, message_id, memory=self.session.memory)
        except AssistantError as exc:
            error = str(exc)
        except Exception as exc:
            error = f"The message could not be forgotten ({type(exc).__name__}: {exc})."
        self.post_message(self.Forgotten(message_id, error, adapter_off))

    def on_memory_screen_forgotten(self, message: Forgotten) -> None:
        if message.error:
            self.notify(message.error, severity="error", markup=False)
            return
        self.forgot = True
        self.snippets = [r for r in self.snippets if r.message_id != message.message_id]
        self.show_snippets()
        self.query_one("#snippet-note", Static).update(count_note(len(self.snippets), self.pending))
        said = "Forgotten: the message is deleted and will not be recalled."
        self.notify(said + (f" {message.adapter_off}" if message.adapter_off else ""), markup=False)

    # -- keys -----------------------------------------------------------------------------------------------

    def action_delete(self) -> None:
        focused = self.focused
        # In a search box, Del deletes text while there is text after the cursor; at its end (where it would do
        # nothing) it acts on the highlighted item below, as in the list itself.
        if isinstance(focused, Input) and (focused.id == "new-fact" or focused.cursor_position < len(focused.value)):
            focused.action_delete_right()
        elif focused is not None and focused.id in ("facts", "fact-query"):
            self.delete_highlighted_fact()
        elif focused is not None and focused.id in ("snippets", "snippet-query"):
            self.forget_highlighted_snippet()

    def action_close(self) -> None:
        self.dismiss(self.forgot)
