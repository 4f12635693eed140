"""MCP servers as tool sources: one configured stdio server (``[mcp_servers.NAME]``) becomes a set of tools.

The ``mcp`` SDK is async while our callers (the CLI, the TUI's workers, the registry's tool threads) are plain
threads, so each server gets one daemon thread running an asyncio loop that owns the stdio transport and the
``ClientSession`` for their whole life: anyio's cancel scopes must be entered and left in the same task. Calls reach
it with ``run_coroutine_threadsafe`` and wait at most the server's timeout.

The server starts on the first ``tools()`` call, never at start-up. Its stderr goes to a private log in the data
dir (never into the terminal or the TUI); its last line is quoted when the server fails. ``close()`` ends the
session and the process (the SDK closes stdin, then terminates the process group), and runs at exit too.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from assistant.errors import AssistantError
from assistant.tools.core import Tool, one_sentence
from storage.paths import data_dir, ensure_private_dir, logs_dir

if TYPE_CHECKING:
    import mcp_types
    from mcp.client.session import ClientSession

    from assistant.config.settings import McpServer

# The SDK's shutdown waits up to 2 s for the server to leave on its own after stdin closes, 2 s after SIGTERM and
# 2 s more after SIGKILL; a stop never takes longer than this.
STOP_SECONDS = 10.0
# Variables a server gets besides its configured ``env``, on top of the SDK's own short list (HOME, LOGNAME, PATH,
# SHELL, TERM, USER): the local timezone matters to servers that speak about time.
PASSED_ENV = ("TZ",)
DESCRIPTION_CHARS = 1000
# JSON-RPC codes the SDK raises for its own failures (mcp_types.CONNECTION_CLOSED, REQUEST_TIMEOUT), copied so that
# reading an error does not import the SDK
CONNECTION_CLOSED = -32000
REQUEST_TIMEOUT = -32001


class McpError(AssistantError):
    """An MCP server could not start, stopped, or its tool reported an error (the message is one sentence)."""


class _ToServerLog(logging.Handler):
    """The SDK's own complaints about one server (a line on its stdout that is not JSON-RPC ...) go to that
    server's log, in its loop thread only, instead of Python's last-resort handler, which prints on our stderr."""

    def __init__(self, out: TextIO, thread: int | None) -> None:
        super().__init__(logging.WARNING)
        self.out, self.thread = out, thread

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        exc = record.exc_info[1] if record.exc_info else None
        # pydantic puts the useful part ("Invalid JSON: ... input_value='garbage'") on the last line
        lines = [line for line in str(exc or "").splitlines() if line.strip() and "further information" not in line]
        cause = f": {one_sentence(lines[-1], 160)}" if lines else ""
        try:
            self.out.write(f"[assistant] {record.getMessage()}{cause}\n")
            self.out.flush()
        except (OSError, ValueError):
            pass  # the log is closed or the disk is full: the server's trouble is reported elsewhere


_SDK_LOGGER = logging.getLogger("mcp")
# With any handler on the SDK's logger, Python no longer falls back to printing its records on stderr (into the
# terminal, or over the TUI); an app that configures logging still receives them through the root logger.
_SDK_LOGGER.addHandler(logging.NullHandler())


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside the exception groups that anyio's task groups wrap around it."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        inner = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (inner or list(exc.exceptions))[0]
    return exc


def _code(exc: BaseException) -> int | None:
    """The JSON-RPC error code of the SDK's ``MCPError`` (the SDK itself uses them for a timeout or a closed pipe)."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def _tool_name(name: str) -> str:
    """A server's tool name as one of ours (``[a-z][a-z0-9_]*``, at most 64): MCP allows dots, dashes, capitals."""
    clean = re.sub(r"[^a-z0-9_]", "_", name.lower()).strip("_") or "tool"
    if not clean[0].isalpha():
        clean = "t_" + clean
    return clean[:64]


def result_text(result: mcp_types.CallToolResult) -> str:
    """The text of a tool's result: its text blocks joined; structured content as JSON when there is no text."""
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)  # type: ignore[union-attr]
        elif kind == "resource":
            resource = block.resource  # type: ignore[union-attr]
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")  # type: ignore[union-attr]
        else:  # images and audio cannot go into a text chat; say that they were there
            parts.append(f"[{kind or 'binary'} content: {getattr(block, 'mime_type', '') or 'unknown type'}]")
    if not parts and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)


class McpSource:
    """One configured stdio MCP server, as a ``ToolSource``: started on first use, stopped by ``close()``."""

    def __init__(
        self,
        name: str,
        server: McpServer,
        home: Path | None = None,
        *,
        reserved: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self.server_name = name
        self.name = f"mcp:{name}"
        self.server = server
        self.home = home
        self._reserved = reserved  # names already taken by other tools: a clash gets the "<server>_" prefix
        self._lock = threading.Lock()
        self._tools: list[Tool] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: ClientSession | None = None
        self._stop: asyncio.Event | None = None
        self._start_scope: Any = None
        self._closed = False

    # -- the ToolSource protocol -------------------------------------------------------------------------------

    def tools(self) -> list[Tool]:
        """The server's tools, starting it the first time; McpError (one sentence) when it cannot start."""
        with self._lock:
            if self._tools is None:
                listed = self._start()
                self._tools = self._as_tools(listed)
            return list(self._tools)

    def close(self) -> None:
        """End the session and the server process (idempotent; also run at exit)."""
        self._closed = True
        self._tools = None
        atexit.unregister(self.close)
        loop, thread = self._loop, self._thread
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._request_stop)
            except RuntimeError:
                pass  # the loop has already finished: the server is gone
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_SECONDS)

    @property
    def log_file(self) -> Path:
        """Where the server's stderr goes."""
        return logs_dir(self.home or data_dir()) / f"mcp-{self.server_name}.log"

    # -- starting and stopping ---------------------------------------------------------------------------------

    def _start(self) -> list[mcp_types.Tool]:
        if self._closed:
            raise McpError(f"The MCP server '{self.server_name}' was stopped; start the assistant again to use it.")
        self._join()  # a server that stopped by itself: its thread ends before a new one starts
        ready: concurrent.futures.Future[list[mcp_types.Tool]] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name=f"mcp-{self.server_name}", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)
        try:
            # The loop gives up at the server's timeout and then stops the process; the extra time is a guard
            # against a loop that misbehaves, so that the caller can never hang.
            return ready.result(self.server.timeout + STOP_SECONDS)
        except concurrent.futures.TimeoutError:
            self.close()
            raise McpError(self._timeout_message()) from None

    def _join(self) -> None:
        if self._thread is not None and not self._thread.is_alive():
            self._thread = None
            self._loop = None

    def _thread_main(self, ready: concurrent.futures.Future[list[mcp_types.Tool]]) -> None:
        try:
            asyncio.run(self._serve(ready))
        except BaseException as exc:  # never let a server's failure escape its thread
            if not ready.done():
                ready.set_exception(McpError(self._start_message(_leaf(exc))))
        finally:
            self._session = None
            self._loop = None

    def _request_stop(self) -> None:
        """In the loop: leave the session (or give up starting it)."""
        if self._start_scope is not None:
            self._start_scope.cancel()
        if self._stop is not None:
            self._stop.set()

    async def _serve(self, ready: concurrent.futures.Future[list[mcp_types.Tool]]) -> None:
        import anyio
        import mcp_types as types
        from mcp.client.session import ClientSession
        from mcp.client.stdio import StdioServerParameters, stdio_client

        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._closed:  # closed before the loop existed to be told
            raise McpError(f"The MCP server '{self.server_name}' was stopped while it was starting.")
        env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ} | dict(self.server.env)
        params = StdioServerParameters(command=self.server.command, args=list(self.server.args), env=env)
        errlog = self._open_log()
        sdk_log = _ToServerLog(errlog, threading.get_ident())
        _SDK_LOGGER.addHandler(sdk_log)
        try:
            async with stdio_client(params, errlog=errlog) as (read, write):
                info = types.Implementation(name="assistant", version="1")
                async with ClientSession(read, write, client_info=info) as session:
                    with anyio.fail_after(self.server.timeout) as scope:
                        self._start_scope = scope
                        await session.initialize()
                        listed = await self._list_all(session)
                    self._start_scope = None
                    if self._closed:
                        raise McpError(f"The MCP server '{self.server_name}' was stopped while it was starting.")
                    self._session = session
                    ready.set_result(listed)
                    await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(McpError(self._start_message(_leaf(exc))))
        finally:
            self._session = None
            _SDK_LOGGER.removeHandler(sdk_log)
            errlog.close()

    @staticmethod
    async def _list_all(session: ClientSession) -> list[mcp_types.Tool]:
        import mcp_types as types

        listed = await session.list_tools()
        tools = list(listed.tools)
        while listed.next_cursor:
            listed = await session.list_tools(params=types.PaginatedRequestParams(cursor=listed.next_cursor))
            tools.extend(listed.tools)
        return tools

    def _open_log(self) -> TextIO:
        """The server's stderr: a private file, emptied at each start (only the latest run matters)."""
        file = self.log_file
        ensure_private_dir(file.parent)
        # O_APPEND: the server writes through its own copy of this descriptor, and our notes must not overwrite it
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        return os.fdopen(fd, "w", encoding="utf-8")

    def _log_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0

    def _last_log_line(self, since: int = 0) -> str:
        """The last line the server wrote on stderr (after byte ``since``), the server's best guess at why."""
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(since)
                lines = fh.read().decode("utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        last = next((line for line in reversed(lines) if line.strip()), "")
        return one_sentence(last.removeprefix("[assistant] "), 200)

    def _said(self, since: int = 0) -> str:
        last = self._last_log_line(since)
        return f" (it said: {last.rstrip('.')})" if last else ""

    def _timeout_message(self) -> str:
        return (
            f"The MCP server '{self.server_name}' did not answer within {self.server.timeout:g} s of starting"
            f"{self._said()}; check that the command {self._command_line()} starts an MCP stdio server "
            f"(log: {self.log_file})."
        )

    def _command_line(self) -> str:
        import shlex

        return one_sentence(shlex.join([self.server.command, *self.server.args]), 160)

    def _start_message(self, exc: BaseException) -> str:
        name, command = self.server_name, self.server.command
        if isinstance(exc, McpError):
            return str(exc)
        if isinstance(exc, FileNotFoundError):
            return (
                f"The MCP server '{name}' cannot start: there is no program '{command}'; "
                f"fix 'command' under [mcp_servers.{name}] in the settings file."
            )
        if isinstance(exc, PermissionError):
            return f"The MCP server '{name}' cannot start: '{command}' is not an executable program."
        if isinstance(exc, TimeoutError):
            return self._timeout_message()
        if isinstance(exc, OSError):
            return f"The MCP server '{name}' cannot start: {exc.strerror or exc}."
        if _code(exc) == CONNECTION_CLOSED:
            return (
                f"The MCP server '{name}' exited as it started{self._said()}; "
                f"run {self._command_line()} yourself to see why (log: {self.log_file})."
            )
        detail = str(exc).strip() or type(exc).__name__
        return f"The MCP server '{name}' failed to start: {detail.rstrip('.')}{self._said()}."

    # -- tools -------------------------------------------------------------------------------------------------

    def _as_tools(self, listed: list[mcp_types.Tool]) -> list[Tool]:
        taken = set(self._reserved() if self._reserved is not None else ())
        tools: list[Tool] = []
        for item in listed:
            name = _tool_name(item.name)
            if name in taken:
                name = _tool_name(f"{self.server_name}_{item.name}")
            if name in taken:
                continue  # two of the server's names map to one of ours; the first keeps it
            taken.add(name)
            schema = dict(item.input_schema or {})
            schema.setdefault("type", "object")
            schema.setdefault("properties", {})
            description = (item.description or item.title or f"The tool {item.name} of the MCP server.").strip()
            annotations = item.annotations
            read_only = bool(annotations is not None and annotations.read_only_hint)
            tools.append(
                Tool(
                    name=name,
                    description=one_sentence(description, DESCRIPTION_CHARS),
                    parameters=schema,
                    func=self._caller(item.name),
                    side_effects=not read_only,
                    # The call gives up at the server's timeout with its own sentence; the registry's guard
                    # comes a little later so that sentence is the one the user reads.
                    timeout=self.server.timeout + 2.0,
                    source=self.name,
                )
            )
        return tools

    def _caller(self, remote: str) -> Callable[..., str]:
        def call(**arguments: Any) -> str:
            return self.call(remote, arguments)

        call.__name__ = _tool_name(remote)
        return call

    def call(self, remote: str, arguments: dict[str, Any]) -> str:
        """Call the server's tool ``remote``; its text, or McpError (one sentence) for any failure."""
        with self._lock:
            if self._session is None or self._loop is None:
                self._start()  # it stopped since the tools were listed: start it again
            loop, session = self._loop, self._session
        assert loop is not None and session is not None
        logged = self._log_size()  # what the server says from here on is about this call
        future = asyncio.run_coroutine_threadsafe(
            session.call_tool(remote, arguments, read_timeout_seconds=self.server.timeout), loop
        )
        try:
            result = future.result(self.server.timeout + 1.0)
        except concurrent.futures.CancelledError:
            raise McpError(f"The MCP server '{self.server_name}' was stopped during the call of {remote}.") from None
        except Exception as exc:
            leaf = _leaf(exc)
            if isinstance(exc, TimeoutError) or _code(leaf) == REQUEST_TIMEOUT:
                future.cancel()
                raise McpError(
                    f"The MCP server '{self.server_name}' did not answer the call of {remote} within "
                    f"{self.server.timeout:g} s."
                ) from None
            if _code(leaf) == CONNECTION_CLOSED:
                self._after_crash()
                raise McpError(
                    f"The MCP server '{self.server_name}' stopped during the call of {remote}{self._said(logged)}; "
                    "it starts again on the next call."
                ) from None
            detail = str(leaf).strip() or type(leaf).__name__
            raise McpError(f"The MCP server '{self.server_name}' refused {remote}: {detail.rstrip('.')}.") from None
        text = result_text(result)
        if result.is_error:
            # the SDK's servers wrap every failure in this prefix, which the sentence below already says
            text = re.sub(rf"^Error executing tool {re.escape(remote)}:\s*", "", text.strip())
            detail = one_sentence(text or "no reason given", 300).rstrip(".")
            raise McpError(f"The tool {remote} of the MCP server '{self.server_name}' failed: {detail}.")
        return text

    def _after_crash(self) -> None:
        """Wind down the session of a server that died, so the next call starts a fresh one."""
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._request_stop)
            except RuntimeError:
                pass
        thread = self._thread
        if thread is not None:
            thread.join(STOP_SECONDS)


__all__ = ["McpError", "McpSource", "result_text"]
