"""The chat screen's actions on whole conversations and on the memory: F2 rename, F8 delete (asks first),
Ctrl+F search, Ctrl+R the memory screen, Ctrl+G memory on / off. Data goes through ``assistant``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant import conversations
from assistant.errors import AssistantError

if TYPE_CHECKING:
    from assistant.session import Session
    from tui.screens.chat_host import ChatHost


def memory_state(session: Session) -> str:
    """The status bar's word for the session's memory."""
    return "on" if session.use_memory else "off"


class ConversationActions:
    """The conversation and memory actions of ChatScreen (a mixin: ``self`` is the chat screen)."""

    def action_rename_chat(self: ChatHost) -> None:
        if self.conversation_id is None:
            self.notify("Nothing to rename yet: this conversation is empty.", severity="warning")
            return
        from tui.screens.rename import RenameScreen

        conversation_id, store = self.conversation_id, self.store
        try:
            title = conversations.title(store, conversation_id)
        except AssistantError as exc:
            self.fail(str(exc))
            return

        def done(new_title: str | None) -> None:
            if not new_title:
                return
            try:
                conversations.rename(store, conversation_id, new_title)
            except AssistantError as exc:
                self.fail(str(exc))
            self.refresh_sidebar()

        self.app.push_screen(RenameScreen(title), done)

    def action_delete_chat(self: ChatHost) -> None:
        if self.conversation_id is None:
            self.notify("Nothing to delete: this conversation is empty.", severity="warning")
            return
        if self.generating:
            self.notify("Stop the reply first (Esc), then delete.", severity="warning")
            return
        from tui.screens.confirm import ConfirmScreen

        conversation_id, store = self.conversation_id, self.store
        try:
            title = conversations.title(store, conversation_id)
        except AssistantError as exc:
            self.fail(str(exc))
            return

        async def done(confirmed: bool | None) -> None:
            if not confirmed:
                return
            try:
                memory = self.session.memory if self.session is not None else None
                adapter_off = conversations.delete(store, conversation_id, memory=memory)
            except AssistantError as exc:
                self.fail(str(exc))
                return
            await self.open_conversation(None)
            self.refresh_sidebar()
            self.notify("Conversation deleted." + (f" {adapter_off}" if adapter_off else ""), markup=False)

        self.app.push_screen(ConfirmScreen(f"Delete the conversation “{title}” and all its messages?"), done)

    def action_search(self: ChatHost) -> None:
        from tui.screens.search import SearchScreen

        async def done(conversation_id: int | None) -> None:
            if conversation_id is not None:
                await self.open_conversation(conversation_id)

        self.app.push_screen(SearchScreen(self.store), done)

    def action_memory(self: ChatHost) -> None:
        if self.session is None:
            self.notify("Still starting up; open the memory in a moment.")
            return
        from tui.screens.memory import MemoryScreen

        async def done(forgot: bool | None) -> None:
            # A forgotten message is gone from its conversation too: show the conversation as it now is.
            if forgot and not self.generating:
                await self.open_conversation(self.conversation_id)
                self.refresh_sidebar()

        self.app.push_screen(MemoryScreen(self.session), done)

    def action_toggle_memory(self: ChatHost) -> None:
        session = self.session
        if session is None:
            self.notify("Still starting up; toggle the memory in a moment.")
            return
        from assistant.config import save_setting

        session.use_memory = not session.use_memory
        self.status.memory = memory_state(session)
        if session.use_memory:
            self.notify("Memory on: replies recall earlier conversations and remembered facts.")
        else:
            self.notify("Memory off: replies recall nothing and use no remembered facts.")
        try:
            save_setting("memory", session.use_memory, home=session.home)
        except AssistantError as exc:
            self.fail(f"{exc} Memory stays {memory_state(session)} until the assistant closes.")
