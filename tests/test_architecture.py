"""The layering is checked by a tool (import-linter), and the entry points import nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["torch", "transformers", "peft", "chromadb", "onnxruntime", "sentence_transformers", "llama_cpp"]


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout and "3 kept" in done.stdout  # layers, and learning held both ways


def test_storage_imports_nothing_from_assistant() -> None:
    # A belt to the tool's braces: the ground floor names no module above it, even lazily inside a function.
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "storage").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if line.lstrip().startswith(
            ("from assistant", "import assistant", "from tui", "import tui", "from learning", "import learning")
        )
    ]
    assert offenders == []


def test_entry_points_load_no_heavy_library() -> None:
    code = (
        "import json, sys\n"
        "import tui.launcher, assistant.cli, tui.app\n"
        "from assistant.cli import cli\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    # The check itself works: importing one of them is seen.
    seen = subprocess.run(
        [sys.executable, "-c", "import sys, llama_cpp; print('llama_cpp' in sys.modules)"],
        capture_output=True,
        text=True,
    )
    assert seen.stdout.strip() == "True"


def test_tui_reaches_storage_only_for_record_types() -> None:
    # The TUI reads and writes data through assistant/ (as the CLI does), so a rule such as "forgetting also
    # unlearns" is written once. Record types for hints are fine, at run time from storage.records only.
    import ast

    def runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []  # type hints only
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.append((node.lineno, node.module))
            elif isinstance(node, ast.Import):
                found += [(node.lineno, alias.name) for alias in node.names]
        return found

    offenders = [
        f"{path.relative_to(ROOT)}:{line} {module}"
        for path in (ROOT / "tui").rglob("*.py")
        for line, module in runtime_imports(ast.parse(path.read_text()))
        if module.split(".")[0] == "storage" and module != "storage.records"
    ]
    assert offenders == []
