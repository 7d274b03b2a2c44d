"""No function of the package or its entry points is longer than a reader holds in mind at once:
``MAX_FUNCTION_LINES`` lines from ``def`` to its last line, docstring included."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 70


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """``(qualified name, lines)`` of every function in ``source`` longer than ``limit`` lines."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lines = child.end_lineno - child.lineno + 1
                    if lines > limit:
                        found.append((name, lines))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def test_long_functions_finds_a_long_method_and_ignores_a_short_one():
    body = "\n".join(f"        x{i} = {i}" for i in range(80))
    source = f"class A:\n    def long(self):\n{body}\n    def short(self):\n        return 1\n"
    assert long_functions(source) == [("A.long", 81)]


def test_no_function_is_longer_than_the_limit():
    sources = [*sorted((REPO / "ipe_lightning").rglob("*.py")), REPO / "run.py", REPO / "sweep.py"]
    offenders = [
        f"{path.relative_to(REPO)}:{name} ({lines} lines)"
        for path in sources
        for name, lines in long_functions(path.read_text())
    ]
    assert not offenders, f"split these (at most {MAX_FUNCTION_LINES} lines each): {offenders}"
