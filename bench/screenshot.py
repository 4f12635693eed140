"""Write an SVG screenshot of the TUI holding a short, real conversation with the bundled model.

Usage: python -m bench.screenshot docs/screenshot.svg
       python -m bench.screenshot --learning docs/learning.svg

The conversation happens in a throwaway data dir (the user's own history is never shown or touched), through the
real app driven by Pilot, so the reply, its speed and the status bar are what a user would see.

``--learning`` shoots the Learning screen (F10) after three real nights of the learning job (several minutes): a
made-up user's history (``bench.personal_data``) arrives in three parts, each followed by ``learning.job.run``.
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


NIGHTS = ((0, 2), (2, 4), (4, 6))  # conversations imported before each night's run: facts, the rest, small talk


def learn_nights(home: Path, user: str = "maren") -> None:
    """Three nights of the real learning job on a made-up user's history, imported in parts."""
    import json

    from assistant.app_store import open_store
    from bench.personal_data import conversations
    from learning import job
    from storage.transfer import import_bytes

    history = conversations(user)
    for night, (start, end) in enumerate(NIGHTS, 1):
        with open_store(home) as store:
            part = {"conversations": history[start:end]}
            import_bytes(store, json.dumps(part).encode(), f"night-{night}.json")
        report = job.run(home)
        print(f"night {night}: {report.status}: {report.message}", file=sys.stderr)


async def capture_learning(target: Path) -> None:
    from assistant.config import load_settings
    from assistant.session import Session
    from storage.db import open_store
    from tui.app import AssistantApp

    settings = load_settings()
    with open_store() as store:
        session = Session(store, settings)
        app = AssistantApp(session=session)
        async with app.run_test(size=(SIZE[0], SIZE[1] + 10)) as pilot:
            await pilot.press("f10")
            for _ in range(MAX_ITERATIONS):
                await pilot.pause(0.05)
                if type(app.screen).__name__ == "LearningScreen":
                    break
            await pilot.pause()
            app.clear_notifications()
            await pilot.pause()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(app.export_screenshot(title="assistant: learning"), encoding="utf-8")
        session.close()


def main(argv: list[str]) -> int:
    learning = "--learning" in argv
    args = [a for a in argv[1:] if a != "--learning"]
    if len(args) != 1:
        print("usage: python -m bench.screenshot [--learning] PATH.svg", file=sys.stderr)
        return 2
    target = Path(args[0]).resolve()
    with tempfile.TemporaryDirectory(prefix="assistant-screenshot-") as home:
        os.environ["ASSISTANT_HOME"] = home
        os.environ.setdefault("ASSISTANT_TEMPERATURE", "0")
        os.environ.setdefault("ASSISTANT_SEED", "42")
        os.environ.setdefault("ASSISTANT_MAX_TOKENS", "160")
        if learning:
            learn_nights(Path(home))
            asyncio.run(capture_learning(target))
        else:
            asyncio.run(capture(target))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
