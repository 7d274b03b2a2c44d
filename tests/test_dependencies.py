"""Every runtime dependency pyproject.toml declares is imported by the package or its entry
points; what only the tests use is a dev dependency."""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def is_resources_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "files"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def imported_modules(files) -> set[str]:
    found = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
            elif is_resources_call(node):  # importlib.resources.files("skimage"): its data
                found.add(node.args[0].value.split(".")[0])
    return found


def test_every_runtime_dependency_is_imported_by_the_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {normalised(re.split(r"[<>=!~;\[ ]", spec)[0]) for spec in project["dependencies"]}
    files = [*(REPO / "ipe_lightning").rglob("*.py"), REPO / "run.py", REPO / "sweep.py"]
    distributions = packages_distributions()
    used = {
        normalised(dist)
        for module in imported_modules(files)
        for dist in distributions.get(module, [])
    }
    assert declared - used == set()
