"""Write an SVG screenshot of the TUI holding a short, real conversation with the bundled model.

Usage: python -m bench.screenshot docs/screenshot.svg

The conversation happens in a throwaway data dir (the user's own history is never shown or touched), through the
real app driven by Pilot, so the reply, its speed and the status bar are what a user would see.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

SIZE = (110, 34)
QUESTION = "Give me three short tips for sleeping better."
MAX_ITERATIONS = 6000  # 0.05 s each: a generous bound for a slow, busy machine


async def capture(target: Path) -> None:
    from assistant.config import load_settings
    from assistant.session import Session
    from storage.db import open_store
    from tui.app import AssistantApp

    settings = load_settings()
    with open_store() as store:
        session = Session(store, settings)
        app = AssistantApp(session=session)
        async with app.run_test(size=SIZE) as pilot:
            app.main.prompt.cursor_blink = False
            await pilot.press(*QUESTION)
            await pilot.press("enter")
            for _ in range(MAX_ITERATIONS):
                await pilot.pause(0.05)
                if not app.main.generating and not any(w.is_running for w in app.workers):
                    break
            else:
                raise SystemExit("The reply did not finish; is the machine very busy?")
            app.clear_notifications()
            await pilot.pause()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(app.export_screenshot(title="assistant"), encoding="utf-8")
        session.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.screenshot PATH.svg", file=sys.stderr)
        return 2
    target = Path(argv[1]).resolve()
    with tempfile.TemporaryDirectory(prefix="assistant-screenshot-") as home:
        os.environ["ASSISTANT_HOME"] = home
        os.environ.setdefault("ASSISTANT_TEMPERATURE", "0")
        os.environ.setdefault("ASSISTANT_SEED", "42")
        os.environ.setdefault("ASSISTANT_MAX_TOKENS", "160")
        asyncio.run(capture(target))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
