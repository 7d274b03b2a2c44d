"""The documents say what is true: their links resolve, the README stays short, and every
documented command and code block runs.

Which commands (the rule):

- in README.md and docs/*.md, each line of a ```` ```bash ````, ```` ```sh ```` or
  ```` ```console ```` block that starts with ``python `` or ``make `` (after an optional ``$ ``
  prompt and ``VAR=value`` environment assignments; ``# ...`` comments dropped, a trailing ``\\``
  continues the line), and each ```` ```python ```` block as a whole;
- in the header comments of conf/**/*.yaml (the comment lines before the first key), each line
  ``#   python ...`` (``python`` indented after the ``#``) with its ``\\`` continuations; a
  ``[key=value]`` token there is optional and is used.

How each runs in the default suite (seconds):

- ``python run.py ...``: composed with Hydra's compose API, as ``--cfg job`` would;
- ``python sweep.py <sweep> ...``: sweep.py's ``main`` in-process with ``--dry-run
  --no-preflight``; ``list`` runs; ``report`` and ``figure`` give ``--help``, which must name
  every ``--option`` the command uses;
- ``python -m ipe_lightning.bench <name> ...``: that benchmark's ``--help``, likewise;
- ``python -m ipe_lightning.data.tiny_tree DIR``: runs, into a temporary directory;
- ``make <target> [VAR=value]``: the target and the variables exist in the Makefile; ``ARGS`` of
  ``make run`` are composed as run.py's arguments;
- Python blocks run as written, on the CPU, each in a fresh namespace and a temporary directory.

The slow suite (``-m slow``) runs them for real on tiny data: sweep commands as dry runs with the
preflight, ``report``, ``figure`` and ``list`` against a finished ``debug=tiny`` Table 4 sweep,
and run.py commands with ``debug=smoke trainer=cpu data.inp_size=16`` (crops the tiny images
hold; without the command's ``trainer``, ``launcher``, ``logger``, ``compile`` and GPU predict
choices; tested at ``eval.scales=[2]`` unless the command chooses its scales), test
and predict on that sweep's checkpoint (training from it goes one epoch further). Commands that
the slow suite would run the same way run once: run.py commands equal once those choices are
dropped, and sweep commands of one sweep and launcher (their options are parsed in the default
suite).

Placeholders: ``data.root=...`` (``/data``, ``/datasets``, ``$(python -m
ipe_lightning.data.tiny_tree ...)``) is the tiny tree of ``python -m
ipe_lightning.data.tiny_tree``; ``/path/to/last.ckpt`` a checkpoint; ``/path/to/photos``,
``/path/to/photo.png``, ``/path/to/hr``, ``/path/to/train``, ``/path/to/val`` images;
``multirun/<sweep>/<time>`` and ``/tmp/fig_sweep`` a sweep directory (a fresh one after
``--sweep-dir``); any other ``/tmp/...``, ``/path/to/...`` or ``outputs/...`` a temporary path;
``my_sweep.yaml`` the docs' ```` ```yaml ```` block whose first line is ``# my_sweep.yaml``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import io
import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 200
SHELL_LANGUAGES = {"bash", "sh", "console", "shell"}
TINY_TREE_MODULE = "ipe_lightning.data.tiny_tree"
# Overrides a smoke run of a documented training command leaves out: the hardware, the launcher,
# the loggers and compilation are the command's own; the smoke run is CPU-only and offline.
SMOKE_DROPPED = (
    "trainer",
    "launcher",
    "hydra.launcher",
    "logger",
    "compile",
    "predict.device",
    "predict.precision",  # bf16 is a GPU setting: on a CPU it only slows the smoke run
)


# ---------------------------------------------------------------- reading the documents


@dataclasses.dataclass(frozen=True)
class Command:
    where: str  # file:line of its first line
    text: str  # as written, continuations joined
    env: tuple[tuple[str, str], ...]
    argv: tuple[str, ...]  # after the environment assignments: ("python", "run.py", ...)


def fenced_blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """``(language, first line number, lines)`` of each fenced code block of a Markdown file."""
    blocks, language, start, lines = [], None, 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^\s*```(\S*)", line)
        if fence and language is None:
            language, start, lines = fence[1] or "", number + 1, []
        elif fence:
            blocks.append((language, start, lines))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def join_continuations(numbered: list[tuple[int, str]]) -> list[tuple[int, str]]:
    joined, pending, first = [], "", 0
    for number, line in numbered:
        if not pending:
            first = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append((first, pending + line))
        pending = ""
    return joined


TINY_SUBSTITUTION = re.compile(r"\$\(python -m ipe_lightning\.data\.tiny_tree [^)]*\)")


def parse_command(where: str, text: str) -> Command | None:
    text = text.strip()
    text = text.removeprefix("$ ")
    text = TINY_SUBSTITUTION.sub("@TINY@", text)
    tokens = shlex.split(text, comments=True)
    env = []
    while tokens and re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]):
        key, _, value = tokens.pop(0).partition("=")
        env.append((key, value))
    if not tokens or tokens[0] not in ("python", "make"):
        return None
    tokens = [re.sub(r"^\[(\S+=\S+)\]$", r"\1", token) for token in tokens]  # [optional]
    return Command(where, text, tuple(env), tuple(tokens))


def markdown_commands(path: Path) -> list[Command]:
    found = []
    for language, start, lines in fenced_blocks(path):
        if language not in SHELL_LANGUAGES:
            continue
        numbered = list(enumerate(lines, start))
        for number, text in join_continuations(numbered):
            command = parse_command(f"{path.relative_to(REPO)}:{number}", text)
            if command:
                found.append(command)
    return found


def conf_header_commands(path: Path) -> list[Command]:
    header = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.startswith("#"):
            break
        header.append((number, line[1:]))
    found, numbered = [], join_continuations(header)
    for number, text in numbered:
        if re.match(r"^\s{2,}python ", text):
            command = parse_command(f"{path.relative_to(REPO)}:{number}", text)
            if command:
                found.append(command)
    return found


def all_commands() -> list[Command]:
    found = [command for path in DOCS for command in markdown_commands(path)]
    found += [c for path in sorted(CONF.rglob("*.yaml")) for c in conf_header_commands(path)]
    return found


def python_blocks() -> list[tuple[str, str]]:
    return [
        (f"{path.relative_to(REPO)}:{start}", "\n".join(lines))
        for path in DOCS
        for language, start, lines in fenced_blocks(path)
        if language == "python"
    ]


def named_yaml_blocks() -> dict[str, str]:
    """The docs' YAML blocks whose first line names a file: ``# my_sweep.yaml: ...``."""
    named = {}
    for path in DOCS:
        for language, _, lines in fenced_blocks(path):
            if language == "yaml" and lines:
                match = re.match(r"^#\s*([\w.-]+\.yaml)\b", lines[0])
                if match:
                    named[match[1]] = "\n".join(lines) + "\n"
    return named


COMMANDS = all_commands()


def unique(commands: list[Command]) -> list[Command]:
    seen, kept = set(), []
    for command in commands:
        if command.argv not in seen:
            seen.add(command.argv)
            kept.append(command)
    return kept


def of_kind(*prefix: str) -> list[Command]:
    return unique([c for c in COMMANDS if c.argv[: len(prefix)] == prefix])


def ids(commands: list[Command]) -> list[str]:
    return [command.where for command in commands]


RUN_COMMANDS = of_kind("python", "run.py")
SWEEP_COMMANDS = of_kind("python", "sweep.py")
SWEEP_RUNS = [
    c for c in SWEEP_COMMANDS if c.argv[2:3] and c.argv[2] not in ("report", "figure", "list")
]
SWEEP_TOOLS = [c for c in SWEEP_COMMANDS if c.argv[2:3] and c.argv[2] in ("report", "figure")]
LIST_COMMANDS = [c for c in SWEEP_COMMANDS if c.argv[2:3] == ("list",)]
FINISHED_SWEEP_COMMANDS = SWEEP_TOOLS + LIST_COMMANDS


def distinct(commands: list[Command], shape) -> list[Command]:
    """The first command of each ``shape(command)``."""
    first: dict[object, Command] = {}
    for command in commands:
        first.setdefault(shape(command), command)
    return list(first.values())


def smoke_shape(command: Command) -> tuple[str, ...]:
    """What a run.py command runs as under ``debug=smoke`` (:func:`smoke_overrides`)."""
    return tuple(
        token
        for token in command.argv[2:]
        if not token.split("=", 1)[0].startswith((*SMOKE_DROPPED, "hydra.run.dir"))
    )


def plan_shape(command: Command) -> tuple[str, ...]:
    """The sweep a sweep command plans, and its launcher."""
    return (command.argv[2], *(t for t in command.argv[3:] if t.startswith("launcher=")))


SMOKE_RUNS = distinct(RUN_COMMANDS, smoke_shape)
PLANNED_SWEEPS = distinct(SWEEP_RUNS, plan_shape)
BENCH_COMMANDS = of_kind("python", "-m", "ipe_lightning.bench")
TINY_TREE_COMMANDS = of_kind("python", "-m", TINY_TREE_MODULE)
MAKE_COMMANDS = of_kind("make")
DOWNLOAD_COMMANDS = of_kind("python", "-m", "ipe_lightning.data.download")


def test_the_rule_finds_the_documented_commands():
    """Every ``python`` or ``make`` command the rule finds is of a kind this file knows how to run,
    and the main ones are there."""
    known = RUN_COMMANDS + SWEEP_COMMANDS + BENCH_COMMANDS + TINY_TREE_COMMANDS + MAKE_COMMANDS
    known += DOWNLOAD_COMMANDS
    known_argv = {c.argv for c in known}
    strays = [f"{c.where}: {c.text}" for c in COMMANDS if c.argv not in known_argv]
    assert not strays, "commands of no known kind:\n" + "\n".join(strays)
    assert any(c.argv == ("python", "run.py") for c in RUN_COMMANDS)
    assert any(c.argv == ("make", "test") for c in MAKE_COMMANDS)
    assert SWEEP_RUNS and SWEEP_TOOLS and LIST_COMMANDS and python_blocks()


# ---------------------------------------------------------------- links and length


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (outside code blocks)."""
    anchors, counts, in_code = set(), {}, False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading and not in_code:
            slug = re.sub(r"[^\w\- ]", "", heading[1].strip().lower()).replace(" ", "-")
            count = counts.get(slug, 0)
            counts[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def links(path: Path) -> list[tuple[int, str]]:
    """``(line, target)`` of each relative link or image of a Markdown file, code excluded."""
    found, in_code = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        line = re.sub(r"`[^`]*`", "", line)
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if not re.match(r"^[a-z]+:", target):
                found.append((number, target))
    return found


def test_every_relative_link_resolves():
    broken = []
    for path in DOCS:
        for number, target in links(path):
            file, _, anchor = target.partition("#")
            destination = (path.parent / file).resolve() if file else path
            where = f"{path.relative_to(REPO)}:{number}: {target}"
            if not destination.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and anchor not in heading_anchors(destination):
                broken.append(f"{where} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_readme_is_a_short_manual():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_the_docs_name_every_document_of_docs():
    readme = (REPO / "README.md").read_text()
    missing = [
        p.name for p in sorted((REPO / "docs").glob("*.md")) if f"docs/{p.name}" not in readme
    ]
    assert not missing, f"the README's table of contents lacks {missing}"


# ---------------------------------------------------------------- placeholders


@dataclasses.dataclass
class Places:
    """What the placeholders stand for in one test."""

    tmp: Path
    tiny: Path | str = "/tiny/tree/not/built"
    checkpoint: Path | str = "/no/checkpoint/last.ckpt"
    finished_sweep: Path | None = None
    sweep_files: dict[str, Path] = dataclasses.field(default_factory=dict)

    def images(self) -> dict[str, Path]:
        tiny = Path(self.tiny)
        hr = tiny / "DIV2K" / "DIV2K_valid_HR"
        return {
            "photos": hr,
            "photo.png": next(iter(sorted(hr.glob("*.png"))), hr / "0801.png"),
            "hr": hr,
            "train": tiny / "DIV2K" / "DIV2K_train_HR",
            "val": hr,
            "last.ckpt": Path(self.checkpoint),
        }

    def path(self, value: str, sweep_dir: bool) -> str:
        """A path placeholder's stand-in (``value`` itself when it is none)."""
        if re.fullmatch(r"multirun/\w+/[\d_-]+/?", value) or value == "/tmp/fig_sweep":
            if self.finished_sweep is not None and not sweep_dir:
                return str(self.finished_sweep)
            return str(self.tmp / "sweeps" / value.strip("/").replace("/", "_"))
        if value.startswith("/path/to/"):
            name = value.removeprefix("/path/to/")
            return str(self.images().get(name, self.tmp / "path_to" / name))
        if value.startswith("/tmp/"):
            return str(self.tmp / "tmp" / value.removeprefix("/tmp/"))
        if value.startswith("outputs/"):
            return str(self.tmp / value)
        if value in self.sweep_files:
            return str(self.sweep_files[value])
        return value

    def substitute(self, argv: tuple[str, ...]) -> list[str]:
        out = []
        for index, token in enumerate(argv):
            previous = argv[index - 1] if index else ""
            if token == "@TINY@" or (previous == "--out" and not token.startswith("-")):
                token = str(self.tiny) if token == "@TINY@" else str(self.tmp / "out")
            elif "=" in token and not token.startswith("-"):
                key, _, value = token.partition("=")
                if key == "data.root":
                    value = str(self.tiny)
                else:
                    value = self.path(value.replace("@TINY@", str(self.tiny)), sweep_dir=False)
                token = f"{key}={value}"
            else:
                token = self.path(token, sweep_dir=previous == "--sweep-dir")
            out.append(token)
        return out


@pytest.fixture
def places(tmp_path, monkeypatch) -> Places:
    monkeypatch.chdir(tmp_path)
    sweep_files = {}
    for name, text in named_yaml_blocks().items():
        (tmp_path / name).write_text(text)
        sweep_files[name] = tmp_path / name
    return Places(tmp=tmp_path, sweep_files=sweep_files)


# ---------------------------------------------------------------- running, in-process


def compose_run(overrides: list[str]):
    """What ``python run.py <overrides> --cfg job`` prints, composed in-process."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3", job_name="run"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    return OmegaConf.to_yaml(cfg)


def sweep_main():
    """``main`` of sweep.py, imported the way sweep.py imports it."""
    spec = importlib.util.spec_from_file_location("_sweep_entry_point", REPO / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def call_sweep(argv: list[str]) -> tuple[int, str]:
    main = sweep_main()
    stdout, stderr = io.StringIO(), io.StringIO()
    kwargs = {"conf_dir": CONF} if "conf_dir" in inspect.signature(main).parameters else {}
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv, **kwargs)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 2
    return code or 0, stdout.getvalue() + stderr.getvalue()


def options_of(argv: list[str]) -> list[str]:
    return [token for token in argv if token.startswith("--")]


def assert_help_names(help_text: str, argv: list[str], command: Command) -> None:
    missing = [option for option in options_of(argv) if option not in help_text]
    assert not missing, f"{command.where}: {command.text}\n--help does not name {missing}"


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=ids(RUN_COMMANDS))
def test_run_commands_compose(command, places):
    overrides = places.substitute(command.argv[2:])
    assert not options_of(overrides), f"{command.where}: run.py takes key=value only"
    compose_run(overrides)


def sweep_file(name: str) -> Path:
    return Path(name) if name.endswith(".yaml") else CONF / "sweep" / f"{name}.yaml"


def first_job(path: Path) -> list[str]:
    """The grid's first point as overrides: what the sweep's first job adds to the command."""
    params = yaml.safe_load(path.read_text()).get("params") or {}
    return [f"{key}={str(value).split(',')[0].strip()}" for key, value in params.items()]


@pytest.mark.parametrize("command", SWEEP_RUNS, ids=ids(SWEEP_RUNS))
def test_sweep_commands_parse_and_their_first_job_composes(command, places):
    """The quick form of ``--dry-run`` (a dry run composes every job, seconds each, so the slow
    suite runs those): the sweep exists, sweep.py documents each ``--option`` used, and the
    overrides compose with the grid's first point."""
    argv = places.substitute(command.argv[2:])
    path = sweep_file(argv[0])
    assert path.is_file(), f"{command.where}: no sweep {argv[0]}"
    code, usage = call_sweep(["--help"])
    assert code == 0, usage
    assert_help_names(usage, argv, command)
    overrides = [token for token in argv[1:] if "=" in token and not token.startswith("-")]
    compose_run([*first_job(path), *overrides])


@pytest.mark.parametrize("command", SWEEP_TOOLS, ids=ids(SWEEP_TOOLS))
def test_report_and_figure_commands_parse(command, places):
    argv = places.substitute(command.argv[2:])
    code, output = call_sweep([argv[0], "--help"])
    assert code == 0, f"{command.where}: {argv[0]} --help\n{output}"
    assert_help_names(output, argv, command)


@pytest.mark.parametrize("command", LIST_COMMANDS, ids=ids(LIST_COMMANDS))
def test_list_commands_run(command, places):
    code, output = call_sweep(list(command.argv[2:]))
    assert code == 0 and "table4" in output, output


@pytest.mark.parametrize("command", BENCH_COMMANDS, ids=ids(BENCH_COMMANDS))
def test_bench_commands_parse(command, places):
    argv = places.substitute(command.argv[3:])
    module = importlib.import_module(f"ipe_lightning.bench.{argv[0]}")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    assert stop.value.code in (0, None)
    assert_help_names(stdout.getvalue(), argv, command)


@pytest.mark.parametrize("command", TINY_TREE_COMMANDS, ids=ids(TINY_TREE_COMMANDS))
def test_tiny_tree_commands_run(command, places, monkeypatch, capsys):
    argv = places.substitute(command.argv[3:])
    monkeypatch.setattr(sys, "argv", [TINY_TREE_MODULE, *argv])
    runpy.run_module(TINY_TREE_MODULE, run_name="__main__")
    root = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert (root / "DIV2K" / "DIV2K_valid_HR").is_dir()


@pytest.mark.parametrize("command", DOWNLOAD_COMMANDS, ids=ids(DOWNLOAD_COMMANDS))
def test_download_commands_plan(command, places, capsys):
    """Planned with ``--dry-run`` (no test touches the network; the download itself is tested
    against a loopback server in tests/data/test_download.py)."""
    from ipe_lightning.data import download

    assert download.main([*places.substitute(command.argv[3:]), "--dry-run"]) == 0
    assert "plan into" in capsys.readouterr().out


def makefile_targets_and_variables() -> tuple[set[str], set[str]]:
    text = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", text, flags=re.MULTILINE))
    variables = set(re.findall(r"^([A-Z_]+)\s*[?:]?=", text, flags=re.MULTILINE))
    return targets, variables


@pytest.mark.parametrize("command", MAKE_COMMANDS, ids=ids(MAKE_COMMANDS))
def test_make_commands_name_real_targets(command, places):
    targets, variables = makefile_targets_and_variables()
    words = command.argv[1:]
    assignments = dict(word.split("=", 1) for word in words if "=" in word)
    named = [word for word in words if "=" not in word]
    assert named and set(named) <= targets, f"{command.where}: {command.text}"
    assert set(assignments) <= variables, f"{command.where}: {command.text}"
    if "ARGS" in assignments and named == ["run"]:
        compose_run(places.substitute(tuple(shlex.split(assignments["ARGS"]))))


BLOCKS = python_blocks()


@pytest.mark.parametrize("source", [b for _, b in BLOCKS], ids=[w for w, _ in BLOCKS])
def test_python_blocks_run_as_written(source, places):
    assert "cuda" not in source, "a documented block must run on the CPU"
    namespace = {"__name__": "__doc_block__"}
    exec(compile(source, "<doc block>", "exec"), namespace)


# ---------------------------------------------------------------- the slow suite: for real


@pytest.fixture
def real_places(places, tiny_data_root, finished_table4_sweep) -> Places:
    """The session's tiny tree and finished Table 4 sweep (tests/conftest.py)."""
    places.tiny = tiny_data_root
    places.finished_sweep = finished_table4_sweep
    places.checkpoint = finished_table4_sweep / "table4_ipe_liif_l10" / "checkpoints" / "last.ckpt"
    return places


# experiment=table1_edsr_baseline_x4(_lanczos), model=rdn_x3: a network of one scale
FIXED_SCALE = re.compile(r"^(?:experiment|model)=\S*_x([234])(?:_\w+)?$")


def smoke_overrides(overrides: list[str], places: Places) -> list[str]:
    kept = [o for o in overrides if not o.split("=", 1)[0].startswith(SMOKE_DROPPED)]
    if not any(o.startswith("hydra.run.dir=") for o in kept):
        kept.append(f"hydra.run.dir={places.tmp / 'run'}")
    kept += ["debug=smoke", "trainer=cpu", "logger=csv", "data.inp_size=16"]  # tiny images
    if not any(o.startswith(("eval.scales=", "eval.sets.")) for o in overrides):
        # one scale is enough to run the test of a smoke run: a fixed-scale network's own
        own = [m.group(1) for o in overrides if (m := FIXED_SCALE.search(o))]
        kept.append(f"eval.scales=[{own[0] if own else 2}]")
    trains = not any(o.startswith("mode=") and o != "mode=train" for o in overrides)
    if trains and any(o.startswith("ckpt_path=") for o in overrides):
        kept.append("trainer.max_epochs=3")  # one epoch past the sweep checkpoint's two
    return kept


@pytest.mark.slow
@pytest.mark.parametrize("command", SMOKE_RUNS, ids=ids(SMOKE_RUNS))
def test_run_commands_run_on_tiny_data(command, real_places, monkeypatch):
    """In-process, as run.py's job runs (``tests/support/runs.run_in_process``)."""
    from tests.support.runs import run_in_process

    for name, value in command.env:
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WANDB_MODE", "offline")
    overrides = smoke_overrides(real_places.substitute(command.argv[2:]), real_places)
    run_dir = next(o for o in overrides if o.startswith("hydra.run.dir=")).split("=", 1)[1]
    run_in_process(overrides, Path(run_dir))


@pytest.mark.slow
@pytest.mark.parametrize("command", PLANNED_SWEEPS, ids=ids(PLANNED_SWEEPS))
def test_sweep_commands_plan_with_preflight(command, real_places):
    argv = real_places.substitute(command.argv[2:])
    argv += [] if "--dry-run" in argv else ["--dry-run"]
    code, output = call_sweep(argv)
    assert code == 0, f"{command.where}: {command.text}\n{output}"


@pytest.mark.slow
@pytest.mark.parametrize("command", FINISHED_SWEEP_COMMANDS, ids=ids(FINISHED_SWEEP_COMMANDS))
def test_report_figure_and_list_run_on_a_finished_sweep(command, real_places):
    argv = real_places.substitute(command.argv[2:])
    if "--wandb" in argv:
        pytest.skip("no W&B server: report --wandb is tested against a fake API elsewhere")
    code, output = call_sweep(argv)
    assert code == 0, f"{command.where}: {command.text}\n{output}"


# ---------------------------------------------------------------- citation and tone


def test_citation_cff_names_the_suite_and_the_paper():
    """CITATION.cff has CFF 1.2.0's required keys and cites the paper the README names."""
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert citation["message"] and citation["title"] and citation["authors"]
    paper = citation["references"][0]
    readme = " ".join((REPO / "README.md").read_text().split())
    assert " ".join(paper["title"].split()) in readme
    assert [a["family-names"] for a in paper["authors"]] == ["Liu", "Guo", "Zhang"]


HISTORY = re.compile(r"(?i)\bsessions?\b|\bwe tried\b|\bissues?\b|\bwas lent\b")


def test_the_docs_speak_of_the_product_not_of_its_history():
    hits = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in DOCS
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if HISTORY.search(line)
    ]
    assert not hits, "\n".join(hits)
