"""Imports run downward: a module imports only modules of its own floor or lower, and models and
data never import each other. The floors are docs/architecture.md's Floors section; this table is
checked against it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "ipe_lightning"

# (floor, name, members). A member is a module (``scales.py``) or a package (``models/``) under
# ipe_lightning/, or an entry point at the repository root. Floor 1 has two sides that must not
# import each other, written ``side | side``.
FLOORS: list[tuple[int, str, list[list[str]]]] = [
    (
        0,
        "pure helpers",
        [
            [
                "__init__.py",
                "allocator.py",
                "scales.py",
                "coords.py",
                "configs.py",
                "settings.py",
                "results.py",
                "atomic.py",
                "errors.py",
                "sweep_files.py",
                "table_layout.py",
            ]
        ],
    ),
    (1, "models | data", [["models/", "inference.py", "tiling.py"], ["data/", "bicubic.py"]]),
    (2, "metrics", [["metrics.py"]]),
    (3, "module", [["module.py", "schedules.py", "predict.py", "memory_estimate.py"]]),
    (4, "runtime", [["runtime/"]]),
    (5, "tasks", [["tasks.py", "report_console.py"]]),
    (6, "tools", [["sweep/", "report/", "figure/", "bench/"]]),
    (7, "entry points", [["run.py", "sweep.py"]]),
]
ENTRY_POINTS = {"run.py", "sweep.py"}


def place(path: Path) -> tuple[int, int] | None:
    """``(floor, side)`` of a file of the package (or an entry point); ``None`` if unplaced."""
    relative = path.relative_to(REPO)
    inner = relative.relative_to(PACKAGE).as_posix() if relative.parts[0] == PACKAGE else None
    for floor, _, sides in FLOORS:
        for side, members in enumerate(sides):
            for member in members:
                if member in ENTRY_POINTS:
                    if relative.as_posix() == member:
                        return floor, side
                elif inner is not None and (
                    inner == member or (member.endswith("/") and inner.startswith(member))
                ):
                    return floor, side
    return None


def module_file(name: str) -> Path | None:
    """The file of module ``ipe_lightning.a.b`` (``a/b.py`` or ``a/b/__init__.py``), if any."""
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every ``ipe_lightning`` module that ``path`` imports, at any depth (functions too), as
    ``(line, module)``; ``from x import y`` names ``x.y`` when ``y`` is a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package that holds `path`
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((node.lineno, submodule if module_file(submodule) else base))
    return [(line, name) for line, name in found if name.split(".")[0] == PACKAGE]


def sources() -> list[Path]:
    return sorted((REPO / PACKAGE).rglob("*.py")) + [REPO / name for name in sorted(ENTRY_POINTS)]


def test_every_module_has_a_floor():
    unplaced = [str(p.relative_to(REPO)) for p in sources() if place(p) is None]
    assert not unplaced, f"give these a floor in FLOORS and docs/architecture.md: {unplaced}"


def violations() -> list[str]:
    found = []
    for path in sources():
        here = place(path)
        if here is None:
            continue
        for line, name in imported_modules(path):
            target = module_file(name)
            there = place(target) if target else None
            if there is None:
                continue  # not a module of ours, or unplaced (the test above says so)
            upward = there[0] > here[0]
            across = here[0] == there[0] == 1 and here[1] != there[1]
            if upward or across:
                why = "a higher floor" if upward else "the other side of floor 1"
                found.append(f"{path.relative_to(REPO)}:{line} imports {name} ({why})")
    return found


def test_imports_run_downward_and_models_and_data_do_not_import_each_other():
    found = violations()
    assert not found, "imports against the floors:\n" + "\n".join(found)


ARCHITECTURE_DOC = REPO / "docs" / "architecture.md"


def architecture_section(title: str) -> str:
    """The text of one ``## <title>`` section of docs/architecture.md."""
    text = ARCHITECTURE_DOC.read_text()
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def documented_floors() -> list[tuple[int, str, list[list[str]]]]:
    """The floors as docs/architecture.md's Floors section writes them:
    ``<n> <name>   <members>``."""
    layout = architecture_section("Floors")
    rows = []
    for match in re.finditer(r"^ {2}(\d) ([a-z |]+?) {2,}(.+)$", layout, flags=re.MULTILINE):
        sides = [side.split(", ") for side in match[3].strip().split(" | ")]
        rows.append((int(match[1]), match[2], sides))
    return rows


def test_the_architecture_doc_states_these_floors():
    assert documented_floors() == FLOORS


def documented_layout_tree() -> str:
    """docs/architecture.md's Layout tree: the first code block of its Layout section."""
    layout = architecture_section("Layout")
    return layout.split("```", 2)[1]


def test_the_architecture_doc_layout_names_every_module_and_config_choice():
    """Every module of the package and every config group and choice appears in the Layout tree
    (by name, without ``.py``/``.yaml``), so the tree cannot fall behind the package."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", documented_layout_tree()))
    missing = []
    for path in sorted((REPO / PACKAGE).rglob("*")):
        if path.suffix == ".py" and path.stem not in ("__init__", "__main__"):
            name = path.stem
        elif path.is_dir() and path.name != "__pycache__":
            name = path.name
        else:
            continue
        if name not in words:
            missing.append(str(path.relative_to(REPO)))
    conf = REPO / "conf"
    for group in sorted(p for p in conf.iterdir() if p.is_dir()):
        subgroups = sorted(p for p in group.iterdir() if p.is_dir())
        choices = [group, *sorted(group.glob("*.yaml")), *subgroups]
        for choice in choices:
            if choice.stem not in words and group.name != "experiment":  # rows: by table
                missing.append(str(choice.relative_to(REPO)))
    assert not missing, f"name these in docs/architecture.md's Layout section: {missing}"


def test_no_file_refers_to_the_tracker_or_to_documents_outside_the_repository():
    """Comments, docs and configs point at docs/method.md, never at issue numbers or at a
    "METHOD" file a user of the repository does not have."""
    pattern = re.compile(r"(?i:\bissues?[ -]?#?\d)|\bMETHOD\b")
    files = [
        *(REPO / PACKAGE).rglob("*.py"),
        *(REPO / "conf").rglob("*.yaml"),
        *(REPO / "tests").rglob("*.py"),
        *(REPO / "tests").rglob("*.sh"),
        *(REPO / "docs").rglob("*.md"),
        *(REPO / name for name in ("README.md", "Makefile", "run.py", "sweep.py")),
    ]
    hits = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in files
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, "\n".join(hits)


# The tools (floor 6) meet only at the result files, whose modules are on floor 0. The sweep
# tool's command is the one module that calls another tool: the report at the end of a sweep and
# the report and figure subcommands of sweep.py.
TOOLS = ("sweep/", "report/", "figure/", "bench/")
TOOL_COMMANDS = {"sweep/cli.py": ("report/", "figure/")}


def inner_name(path: Path) -> str:
    return path.relative_to(REPO / PACKAGE).as_posix()


def tool_imports(tool: str) -> list[tuple[str, int, str, str]]:
    """``(file, line, module, its place under ipe_lightning/)`` of every import of ours in the
    tool's files."""
    found = []
    for path in sorted((REPO / PACKAGE / tool).rglob("*.py")):
        for line, name in imported_modules(path):
            target = module_file(name)
            if target is not None and target.is_relative_to(REPO / PACKAGE):
                found.append((inner_name(path), line, name, inner_name(target)))
    return found


def test_tools_import_no_other_tool_but_the_sweep_command_its_report_and_figure():
    found = []
    for tool in TOOLS:
        for source, line, name, target in tool_imports(tool):
            other = next((t for t in TOOLS if target.startswith(t) and t != tool), None)
            if other is not None and other not in TOOL_COMMANDS.get(source, ()):
                found.append(f"{source}:{line} imports {name} (the tool {other})")
    assert not found, "\n".join(found)


def test_the_report_tool_imports_only_floor_zero_and_itself():
    """The report needs only result files: nothing of models, data, runtime, tasks or the other
    tools (and, without them, neither Hydra, Lightning nor torch)."""
    floor_zero = FLOORS[0][2][0]
    found = [
        f"{source}:{line} imports {name}"
        for source, line, name, target in tool_imports("report/")
        if not target.startswith("report/") and target not in floor_zero
    ]
    assert not found, "\n".join(found)
