"""Tools on the chat screen: the session's confirmation of side effects (a modal), `/tool` completion in the
prompt, and the results a turn's tools gave, shown under its reply (and a failed one as a notification too).

`/tool NAME ...` itself is an ordinary message: the session runs it as a turn (``chat_turns`` sends it like any
other), so this mixin only wires the session to the UI and shows what came back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assistant import conversations
from assistant.errors import AssistantError
from tui.widgets.tool_result import as_dict, results_of

if TYPE_CHECKING:
    from assistant.session import Session
    from assistant.turn import Turn
    from tui.screens.chat_host import ChatHost
    from tui.screens.tool_confirm import ToolConfirmer
    from tui.tool_completion import ToolEntry
    from tui.widgets.message import Reply


class ToolActions:
    """The tool wiring of ChatScreen (a mixin: ``self`` is the chat screen)."""

    tool_confirm: ToolConfirmer | None = None

    def attach_tools(self: ChatHost, session: Session) -> None:
        """Ask before side effects with a modal, and complete `/tool` in the prompt (tools listed on first use)."""
        # Imported once the session is open, after the first frame, which needs neither.
        from tui.screens.tool_confirm import ToolConfirmer
        from tui.tool_completion import ToolCompleter, entries_of

        def show_state(state: str) -> None:
            self.status.state = state

        confirmer = ToolConfirmer(self.app, lambda: self.stop_event, show_state)
        self.tool_confirm = confirmer
        session.confirm_tool = confirmer

        def load() -> list[ToolEntry]:
            return entries_of(session.tools.list())

        def failed(error: str) -> None:
            self.notify(f"The tools could not be listed for completion: {error}", severity="warning", markup=False)

        self.prompt.completer = ToolCompleter(load, on_error=failed)

    def cancel_tool_questions(self: ChatHost, *, close: bool = False) -> None:
        """A stopped turn (or the app closing) answers an open confirmation with Cancel."""
        if self.tool_confirm is not None:
            self.tool_confirm.cancel(close=close)

    async def show_tool_results(self: ChatHost, reply: Reply, turn: Turn) -> None:
        """Under the finished reply, what its tools returned; each failure is said in a notification as well."""
        results = tool_results_of(self, turn)
        if not results:
            return
        await reply.show_tools(results)
        for result in results:
            if not result.get("ok"):
                error = str(result.get("error") or f"The tool {result.get('tool')} failed.")
                self.notify(error, severity="error", markup=False, timeout=8)


def tool_results_of(screen: ChatHost, turn: Turn) -> list[dict[str, Any]]:
    """The turn's tool results: from the turn itself when it carries them, else as stored with its reply."""
    result = turn.result
    for owner, name in ((result, "tools"), (turn, "tool_results"), (turn, "tools")):
        found = getattr(owner, name, None)
        if isinstance(found, list | tuple):
            return [as_dict(item) for item in found]
    if result is None or result.message_id is None:
        return []
    try:
        stored = conversations.messages(screen.store, turn.conversation_id)
    except AssistantError:
        return []
    for message in reversed(stored):
        if message.id == result.message_id:
            return results_of(getattr(message, "tools", None))
    return []
