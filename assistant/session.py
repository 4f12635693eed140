"""One chat turn: store the user's message, fit the prompt, stream the reply, store everything.

The user's message is written before the model is even loaded, and the reply is written while it streams (every
half second), so a stop, an error or a crash leaves an incomplete reply on disk, never a lost one.

With memory on, the session also opens the semantic memory in a background thread as soon as it is created (the
embedder's start-up overlaps the model's), puts remembered facts into the system prompt and the best snippets of
earlier conversations in a note before the new message, records which ones each reply was given, and has every
stored message indexed in the background. A note once given stays in the conversation's history where it was
(rebuilt from that record), so each turn's prompt extends the last one and llama.cpp reads only what is new. A
memory failure never costs a message or a reply: recall falls back to word matches, or to nothing, with one
sentence in ``turn.notice``.

Besides sending a message, a turn can answer again: ``regenerate`` (a new reply to the same message),
``edit_and_resend`` (a changed message replaces the old one and what followed it) and ``retry`` (after an error or
a stop). What they replace stays stored, marked superseded, and leaves the conversation and its prompts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant import redo as redo_for
from assistant.adapters import AdapterSync
from assistant.config import Settings, data_dir, models_dir
from assistant.context import PromptPlan, plan_prompt
from assistant.errors import AssistantError, InputError
from assistant.memory_prompt import (
    MemoryBlock,
    NotedHistory,
    history_with_notes,
    parse_remember,
    remember_confirmation,
)
from assistant.models import ModelSpec, resolve
from assistant.reply_check import ReplyChecker, make_guard, sources_for
from assistant.reply_store import write_kept
from assistant.runtime import Backend, Chunk, GenerationParams, Loader, load_backend
from assistant.sensitive import save_warning
from assistant.session_memory import MemoryFactory, SessionMemory, open_memory
from assistant.session_tools import SessionTools, ToolReply, is_tool_command, store_tool_results, stored_results
from assistant.tool_calls import ToolLoop, chat_template, render_tools, supports_tools, tool_style
from assistant.turn import AfterReply, Turn, TurnResult, TurnSetup
from storage.db import Store
from storage.facts import MAX_FACT_CHARS, add_fact
from storage.paths import unsaved_dir
from storage.records import Message
from storage.revisions import recalled_for, supersede

if TYPE_CHECKING:
    from assistant.tools.registry import Confirm, Tools
    from storage.embedder import Embedder
    from storage.memory import Memory

MAX_MESSAGE_CHARS = 1_000_000  # beyond this, a paste is almost surely a mistake; refuse rather than store


def validate_message(text: str) -> str:
    """Refuse what cannot be a chat message: empty, binary, absurdly large."""
    if "\x00" in text:
        raise InputError("The message contains binary data (NUL bytes); send text only.")
    if not text.strip():
        raise InputError("Nothing to send: the message is empty.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InputError(
            f"The message is {len(text):,} characters long; the limit is {MAX_MESSAGE_CHARS:,}. Send a shorter one."
        )
    return text


class CannedReply:
    """A reply written by the assistant itself, not the model (the confirmation of `/remember`)."""

    name = "assistant"
    n_ctx = 0

    def __init__(self, text: str) -> None:
        self.text = text

    def count_tokens(self, text: str) -> int:
        return 0

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        return ""

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Chunk]:
        yield Chunk(self.text, 0, 0.0, "stop")

    def close(self) -> None:
        pass


class Session:
    """Chat turns against one store and one (lazily loaded) model."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        model: str | None = None,
        home: Path | None = None,
        loader: Loader = load_backend,
        memory: Memory | None = None,
        memory_factory: MemoryFactory = open_memory,
        use_memory: bool | None = None,
        background_index: bool = True,
        use_adapter: bool | None = None,
    ) -> None:
        """``memory`` is used as given, else built by ``memory_factory`` (in a background thread) when memory is on.

        ``use_memory`` overrides the ``memory`` setting; ``background_index=False`` leaves indexing to
        the warm-up's catch-up with earlier calls and to ``index_now()`` (the one-shot CLI: no thread to race).
        ``use_adapter`` overrides the ``adapter`` setting (False: the base model alone, `chat --no-adapter`).

        ``after_reply`` holds the steps run, in order, once a reply is stored (each receives the turn and its
        result and may add to the result; one that fails becomes a notice). The checker attaches here.
        """
        self.store = store
        self.settings = settings
        self.model_name = model or settings.model
        self.home = home or data_dir()
        self._loader = loader
        self._backend: Backend | None = None
        self._spec: ModelSpec | None = None
        self._load_lock = threading.Lock()
        # Settable (the TUI may toggle it): False answers with the base model alone from the next turn on.
        self.use_adapter = settings.adapter if use_adapter is None else bool(use_adapter)
        self._adapters = AdapterSync(store, self.home)
        self._adapter_notice: str | None = None  # why the adapter was not applied at load, said in the next turn
        self.load_seconds: float | None = None
        self._memory = SessionMemory(
            store, self.home, settings, memory=memory, factory=memory_factory, background_index=background_index
        )
        self._use_memory = settings.memory if use_memory is None else use_memory
        self.after_reply: list[AfterReply] = [self._index_reply]
        self._tools = SessionTools(settings, self.home)
        # Asked before a tool with side effects runs, from the thread running the turn (the CLI: --yes or a prompt;
        # the TUI: a modal). None: such tools are refused, and the reply says so.
        self.confirm_tool: Confirm | None = None
        # Replies finished while another program held the database, kept to be written when it can be.
        self.spool = unsaved_dir(self.home)
        self._write_kept()
        if self._use_memory:
            self.start_memory()

    @property
    def models_dir(self) -> Path:
        return models_dir(self.home)

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def load(self) -> Backend:
        """Load the model if it is not loaded yet (thread-safe; the TUI calls it from a worker)."""
        with self._load_lock:
            if self._backend is None:
                spec = resolve(self.store, self.model_name, self.models_dir)
                started = time.perf_counter()
                self._backend = self._loader(spec, self.settings)
                self._spec = spec
                self._adapter_notice = self._adapters.apply(self._backend, spec, self.use_adapter)
                self.load_seconds = time.perf_counter() - started
            return self._backend

    @property
    def adapter_version(self) -> str | None:
        """The adapter the loaded model answers with (``"v3"``), or None: the base model alone."""
        return getattr(self._backend, "adapter_version", None)

    def sync_adapter(self) -> str | None:
        """Apply the adapter that should answer now (each turn calls it: a newly promoted adapter, a rollback or a
        removal takes effect without a restart); one sentence when it could not be applied, once per file."""
        with self._load_lock:
            notice = self._adapters.apply(self._backend, self._spec, self.use_adapter)
        pending, self._adapter_notice = self._adapter_notice, None
        return " ".join(n for n in (pending, notice) if n) or None

    def switch_model(self, name: str) -> None:
        """Use another model from the next turn on (checked now, loaded lazily)."""
        resolve(self.store, name, self.models_dir)
        with self._load_lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None
                self._spec = None
            self.model_name = name

    def close(self) -> None:
        self._memory.close()
        self._tools.close()
        with self._load_lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    @property
    def tools(self) -> Tools:
        """The tools (built-ins, plugins, MCP servers), loaded on first use: a turn that calls none loads none."""
        return self._tools.get()

    # -- memory ---------------------------------------------------------------------------------------------

    @property
    def use_memory(self) -> bool:
        """Whether turns recall earlier conversations and remembered facts (settable; the TUI toggles it)."""
        return self._use_memory

    @use_memory.setter
    def use_memory(self, value: bool) -> None:
        self._use_memory = bool(value)
        if self._use_memory:
            self.start_memory()

    def start_memory(self) -> None:
        """Open the memory and load its embedder in a background thread (never on the caller's thread)."""
        self._memory.start()

    @property
    def memory(self) -> Memory | None:
        """The open semantic memory (None until its warm-up is over, when memory is off, or when it failed)."""
        return self._memory.memory

    @property
    def memory_error(self) -> str | None:
        """Why the memory could not start (said once, in the next turn's notice)."""
        return self._memory.error

    @property
    def indexing_behind(self) -> bool:
        """The one-shot warm-up left older messages pending: index them before exiting."""
        return self._memory.indexing_behind

    def wait_for_memory(self, timeout: float | None = None) -> Memory | None:
        """The memory once its warm-up is over (None if memory is off or could not start)."""
        return self._memory.wait(timeout)

    def index_now(self, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Index every message not yet indexed (the CLI calls it before exiting when the warm-up left a backlog)."""
        return self._memory.index_now(on_progress)

    def recall(
        self, text: str, conversation_id: int | None, counter: Any, n_ctx: int, past: NotedHistory | None = None
    ) -> tuple[MemoryBlock, str | None]:
        """The memory for a message (facts, and recalled snippets not already given in the conversation's history
        ``past``) and at most one notice; nothing when memory is off."""
        if not self._use_memory:
            return MemoryBlock(), None
        return self._memory.recall(text, conversation_id, counter, n_ctx, past)

    def _index_reply(self, turn: Turn, result: TurnResult) -> None:
        """After-reply step: hand the stored reply to the background indexer."""
        self._memory.notify()

    def _write_kept(self) -> None:
        try:
            write_kept(self.store, self.spool)
        except Exception:  # a kept reply waits for the next start; it never stops this one
            pass

    # -- turns ----------------------------------------------------------------------------------------------

    def generation_params(self) -> GenerationParams:
        params = GenerationParams.from_settings(self.settings)
        params.logprobs = self.settings.grounding  # the checker marks where the model itself was unsure
        return params

    def _checker(self, grounded: bool = True) -> list[AfterReply]:
        """The checker's after-reply step, when privacy or grounding is on (it stores the verdict)."""
        grounding = self.settings.grounding and grounded
        if self.settings.privacy == "off" and not grounding:
            return []
        return [ReplyChecker(self.settings.privacy, grounding, self._loaded_embedder)]

    def _loaded_embedder(self) -> Embedder | None:
        """The memory's embedder when the memory is open (the checker then loads no second one)."""
        memory = self._memory.memory if self._use_memory else None
        return getattr(memory, "embedder", None)

    def _attach_checker(
        self, turn: Turn, text: str, history: list[Message], past: NotedHistory, block: MemoryBlock
    ) -> None:
        """Give the turn its stream guard and the sources its reply will be grounded in.

        What the user typed in this conversation (and only that: never the notes of recalled snippets, which come
        from other conversations) may be shown back; the notes given earlier are sources all the same."""
        typed = [m.content for m in history if m.role == "user"] + [text]
        turn.guard = make_guard(typed, self.settings.privacy)
        if self.settings.grounding:
            said = [m["content"] for m in past.messages if m["role"] == "user"] + [text]  # with their notes
            recalls = [r.text for r in block.recalls]
            turn.sources = sources_for(said, [f.text for f in block.facts], recalls, stored_results(history))

    def _setup(self, checked: bool = True, grounded: bool = True) -> TurnSetup:
        steps = [*self.after_reply, store_tool_results, *(self._checker(grounded) if checked else [])]
        return TurnSetup(
            store=self.store,
            params=self.generation_params(),
            after_reply=tuple(steps),
            quiet=self._memory.quiet,
            spool=self.spool,
        )

    def start_turn(self, text: str, conversation_id: int | None = None) -> Turn:
        """Store the user's message (first, always), then load the model and plan the prompt."""
        text = validate_message(text)
        self._check_remember(text)
        self._tools.request(text)  # `/tool NAME ...`: a typo is refused before anything is stored
        if conversation_id is None:
            conversation_id = self.store.create_conversation(model=self.model_name)
        else:
            self.store.get_conversation(conversation_id)
        return self._send(conversation_id, text, self.store.messages(conversation_id))

    def regenerate(self, reply_message_id: int) -> Turn:
        """A new reply to the message that ``reply_message_id`` answered; the old reply (and anything after it)
        stays stored, superseded by the new one once it starts."""
        redo = redo_for.regenerate(self.store, reply_message_id)
        return self._reply(redo.conversation_id, redo.user.id, redo.user.content, redo.history, [], redo.replaces)

    def edit_and_resend(self, user_message_id: int, text: str) -> Turn:
        """Replace one of the user's messages (and everything after it) with ``text``, stored anew, and answer it."""
        text = validate_message(text)
        redo = redo_for.edit(self.store, user_message_id)
        self._check_remember(text)
        self._tools.request(text)
        return self._send(redo.conversation_id, text, redo.history, redo.replaces)

    def retry(self, conversation_id: int) -> Turn:
        """A reply to the conversation's last message of the user that has no complete reply (after an error or a
        stop); a failed or partial reply is superseded by the new one."""
        redo = redo_for.retry(self.store, conversation_id)
        return self._reply(conversation_id, redo.user.id, redo.user.content, redo.history, [], redo.replaces)

    @staticmethod
    def _check_remember(text: str) -> None:
        remember = parse_remember(text)
        if remember is not None and remember.command:
            if not remember.fact:
                raise InputError("Nothing to remember: write the fact after /remember (`/remember I am vegetarian`).")
            if len(" ".join(remember.fact.split())) > MAX_FACT_CHARS:
                raise InputError(f"A fact can be at most {MAX_FACT_CHARS:,} characters; shorten it and try again.")

    def _send(self, conversation_id: int, text: str, history: list[Message], replaces: Sequence[int] = ()) -> Turn:
        """Store a new message of the user (replacing ``replaces``), then answer it."""
        user_message_id = self.store.add_message(conversation_id, "user", text)
        if replaces:
            supersede(self.store, replaces, user_message_id)
        self._memory.notify()
        self._write_kept()  # the database is writable again: replies kept while it was locked go in now
        notices: list[str] = []
        remember = parse_remember(text)
        if remember is not None and remember.fact:
            try:
                fact_id = add_fact(self.store, remember.fact, source_message_id=user_message_id)
            except AssistantError as exc:
                if remember.command:
                    raise
                notices.append(f"That could not be remembered: {exc}")
            else:
                warning = save_warning(remember.fact, fact_id)
                if remember.command:
                    # Answered without the model: nothing to generate, so nothing to wait for.
                    reply = remember_confirmation(" ".join(remember.fact.split()), fact_id, self._use_memory)
                    plan = PromptPlan("", 0, [], 0, 0, False, None)
                    turn = Turn(self._setup(checked=False), CannedReply(reply), conversation_id, user_message_id, plan)
                    turn.notice = warning
                    return turn
                if warning:
                    notices.append(warning)
        return self._reply(conversation_id, user_message_id, text, history, notices)

    def _history(self, messages: list[Message], counter: Any, n_ctx: int) -> NotedHistory:
        """Earlier turns as the model read them, with their notes when memory is on."""
        if not self._use_memory:
            return NotedHistory([{"role": m.role, "content": m.content} for m in messages])
        try:
            notes = recalled_for(self.store, [m.id for m in messages if m.role == "assistant"])
        except AssistantError:
            notes = {}
        return history_with_notes(messages, notes, counter, self.settings.memory_budget(n_ctx))

    def _reply(
        self,
        conversation_id: int,
        user_message_id: int,
        text: str,
        history: list[Message],
        notices: list[str],
        replaces: Sequence[int] = (),
    ) -> Turn:
        """Plan the prompt for a stored message of the user and return the turn that will answer it."""
        if is_tool_command(text):
            return self._tool_turn(conversation_id, user_message_id, text, history, replaces)
        backend = self.load()
        adapter_notice = self.sync_adapter()
        if adapter_notice:
            notices.append(adapter_notice)
        past = self._history(history, backend, backend.n_ctx)
        block, memory_notice = self.recall(text, conversation_id, backend, backend.n_ctx, past)
        system = self.settings.system_prompt
        if block.facts_text:
            system = f"{system.rstrip()}\n\n{block.facts_text}" if system.strip() else block.facts_text
        offered = self._offered_tools(backend, notices)
        if offered:
            system = f"{system.rstrip()}\n\n{offered}" if system.strip() else offered
        plan = plan_prompt(backend, system, past.messages, text, self.settings.max_tokens, note=block.note)
        if plan.user_trimmed:
            self.store.update_message(user_message_id, context_trimmed=1)
        model: Backend = backend
        if offered:
            model = ToolLoop(
                backend, self.tools, plan.messages, steps=self.settings.tool_steps, confirm=self.confirm_tool
            )
        turn = Turn(self._setup(), model, conversation_id, user_message_id, plan, replaces=replaces)
        if isinstance(model, ToolLoop):
            turn.tools = model.results
        turn.memories = list(block.recalls)
        turn.facts = list(block.facts)
        self._attach_checker(turn, text, history, past, block)
        turn.notice = " ".join(n for n in (plan.notice, *notices, memory_notice) if n) or None
        return turn

    def _offered_tools(self, backend: Backend, notices: list[str]) -> str:
        """The tools for the system prompt when the model may call them ("" on the hot path: setting off, or a
        template without tools, as for the bundled models; nothing is loaded then)."""
        if not (self.settings.tools and self.settings.tool_steps > 0 and supports_tools(backend)):
            return ""
        try:
            tools = self.tools.list()
        except Exception as exc:  # the chat goes on without tools
            notices.append(f"The tools could not be loaded ({type(exc).__name__}: {exc}).")
            return ""
        return render_tools(tools, tool_style(chat_template(backend))) if tools else ""

    def _tool_turn(
        self, conversation_id: int, user_message_id: int, text: str, history: list[Message], replaces: Sequence[int]
    ) -> Turn:
        """`/tool NAME ...`: the reply is the tool's result, written without the model. The privacy policy holds
        for it as for any reply (a note or a server may hold a card number the user never typed here); grounding
        does not apply: the reply is its source."""
        request = self._tools.request(text)
        assert request is not None
        reply = ToolReply(self.tools, request, self.confirm_tool)
        plan = PromptPlan("", 0, [], 0, 0, False, None)
        setup = self._setup(grounded=False)
        turn = Turn(setup, reply, conversation_id, user_message_id, plan, replaces=replaces)
        turn.tools = reply.results
        turn.guard = make_guard([m.content for m in history if m.role == "user"] + [text], self.settings.privacy)
        return turn
