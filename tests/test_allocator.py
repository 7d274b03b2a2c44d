"""Processes started by an entry point (run.py, sweep jobs, the benchmarks) keep freed tensor
buffers instead of faulting them back in (glibc only); the switch turns it off; elsewhere nothing
happens; importing the library alone changes nothing. Claims about speed are counted in page
faults, which other work on the machine does not change, never in seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ipe_lightning import allocator
from ipe_lightning.allocator import CHILD_ENVIRONMENT, SWITCH, Tuning, child_environment

on_glibc = pytest.mark.skipif(allocator.glibc_version() is None, reason="glibc only")

# Allocates, fills and frees a 64 MB tensor 20 times (after 10 untimed rounds, in which the heap
# grows to fit) and prints the minor page faults of the 20, the tuning and the child environment.
# "import": as an entry point (keep_freed_memory first); "library": imports the library only;
# "bare": neither.
CHILD = """
import json, os, resource, sys
if sys.argv[1] == "import":
    import ipe_lightning
    from ipe_lightning.allocator import CHILD_ENVIRONMENT, keep_freed_memory
    state, names = keep_freed_memory().state, list(CHILD_ENVIRONMENT)
elif sys.argv[1] == "library":
    import ipe_lightning, ipe_lightning.metrics
    from ipe_lightning.allocator import CHILD_ENVIRONMENT, tuning
    state, names = tuning(), list(CHILD_ENVIRONMENT)
else:
    state, names = None, []
import torch
n = 16 * 2**20  # float32: 64 MB
for _ in range(10):
    t = torch.ones(n); del t
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    t = torch.ones(n); del t
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults": faults, "state": state, "env": {k: os.environ.get(k) for k in names}}))
"""
PAGES_PER_ROUND = 64 * 2**20 // 4096
ROUNDS = 20


def run_child(env: dict[str, str], imports: bool | str = True) -> dict:
    mode = imports if isinstance(imports, str) else "import" if imports else "bare"
    argv = [sys.executable, "-c", CHILD, mode]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def children() -> dict[str, dict]:
    """The same loop in fresh processes: tuned by the import, switched off, and tuned by the
    environment alone (no ipe_lightning: what a child that execs another interpreter gets)."""
    return {
        "on": run_child(child_environment(tuned=True)),
        "off": run_child(child_environment(tuned=False)),
        "environment_only": run_child(
            {**child_environment(tuned=True), **CHILD_ENVIRONMENT}, imports=False
        ),
        "library": run_child(child_environment(tuned=True), imports="library"),
    }


@on_glibc
def test_the_entry_call_removes_the_page_faults_of_a_freed_tensor(children):
    on, off = children["on"], children["off"]
    assert off["faults"] >= 0.9 * ROUNDS * PAGES_PER_ROUND  # glibc's default: every page, again
    assert on["faults"] < 0.05 * off["faults"]
    assert on["state"] == "mallopt" and off["state"] == "off"


@on_glibc
def test_the_environment_for_children_is_set_and_alone_removes_the_faults(children):
    assert children["on"]["env"] == CHILD_ENVIRONMENT
    assert children["environment_only"]["faults"] < 0.05 * children["off"]["faults"]


@on_glibc
def test_the_switch_off_leaves_the_environment_untouched(children):
    assert children["off"]["env"] == dict.fromkeys(CHILD_ENVIRONMENT)


@on_glibc
def test_importing_the_library_leaves_glibc_and_the_environment_alone(children):
    library, off = children["library"], children["off"]
    assert library["state"] is None  # keep_freed_memory was not called
    assert library["env"] == dict.fromkeys(CHILD_ENVIRONMENT)
    # mallopt untouched: the freed tensor's pages fault back in as under glibc's defaults
    assert library["faults"] >= 0.9 * ROUNDS * PAGES_PER_ROUND
    assert library["faults"] >= 0.5 * off["faults"]


def test_importing_the_library_calls_no_mallopt():
    code = (
        "import ctypes, json, os\n"
        "import ipe_lightning, ipe_lightning.metrics, ipe_lightning.models, ipe_lightning.data\n"
        "from ipe_lightning import allocator\n"
        "print(json.dumps({'tuning': allocator.tuning(),"
        " 'env': sorted(k for k in os.environ if k.startswith('MALLOC_'))}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=child_environment(tuned=True),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"tuning": None, "env": []}


# run.py as `python run.py --cfg job` runs it (Hydra prints the config and exits), then reports
# what the entry point did to the allocator.
RUN_PY = """
import json, os, runpy, sys
sys.argv = ["run.py", "--cfg", "job"]
try:
    runpy.run_path("run.py", run_name="__main__")
except SystemExit:
    pass
from ipe_lightning.allocator import CHILD_ENVIRONMENT, tuning
done = tuning()
env = {k: os.environ.get(k) for k in CHILD_ENVIRONMENT}
print(json.dumps({"state": done and done.state, "env": env}))
"""


def test_run_py_tunes_the_allocator_before_anything_else():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", RUN_PY],
        cwd=repo,
        env=child_environment(tuned=True),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if allocator.glibc_version() is None:
        assert result["state"] == "unsupported"
    else:
        assert result == {"state": "mallopt", "env": CHILD_ENVIRONMENT}


@on_glibc
def test_a_child_that_inherits_the_environment_leaves_it_to_glibc():
    done = subprocess.run(
        [sys.executable, "-c", "import ipe_lightning.allocator as a; print(a.keep_freed_memory())"],
        env={**child_environment(tuned=True), **CHILD_ENVIRONMENT},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "state='environment'" in done.stdout


class Recorder:
    """Stands in for glibc's mallopt: records the calls, answers ``result``."""

    def __init__(self, result: int = 1):
        self.calls: list[tuple[int, int]] = []
        self.result = result

    def __call__(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.result


@pytest.fixture
def mallopt(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(allocator, "_mallopt", lambda: recorder)
    monkeypatch.setattr(allocator, "glibc_version", lambda: "glibc 2.36")
    return recorder


def test_on_glibc_mallopt_gets_both_settings_and_children_the_environment(mallopt):
    environ = {"PATH": "/bin"}
    tuning = allocator._tune(environ)
    assert tuning == Tuning("mallopt", "glibc 2.36", {"M_MMAP_MAX": 1, "M_TRIM_THRESHOLD": 1})
    assert mallopt.calls == [(allocator.M_MMAP_MAX, 0), (allocator.M_TRIM_THRESHOLD, -1)]
    assert environ == {"PATH": "/bin", **CHILD_ENVIRONMENT}


@pytest.mark.parametrize("value", ["0", "off", "False", " no "])
def test_the_switch_off_calls_nothing_and_sets_nothing(mallopt, value):
    environ = {SWITCH: value}
    assert allocator._tune(environ) == Tuning("off")
    assert mallopt.calls == [] and environ == {SWITCH: value}


@pytest.mark.parametrize(
    "setting",
    [
        {"MALLOC_MMAP_THRESHOLD_": "1048576"},
        {"MALLOC_TRIM_THRESHOLD_": "0"},
        {"GLIBC_TUNABLES": "glibc.malloc.mmap_max=8"},
    ],
)
def test_malloc_settings_already_in_the_environment_win(mallopt, setting):
    environ = dict(setting)
    assert allocator._tune(environ).state == "environment"
    assert mallopt.calls == [] and environ == setting


def test_a_refused_setting_sets_nothing_for_children(mallopt):
    mallopt.result = 0
    environ: dict[str, str] = {}
    assert allocator._tune(environ).state == "failed"
    assert environ == {}


@pytest.mark.parametrize("libc", ["musl or macOS", "Windows"])
def test_on_another_c_library_nothing_happens_and_nothing_raises(monkeypatch, libc):
    if libc == "Windows":
        monkeypatch.delattr(os, "confstr", raising=False)
    else:

        def unknown_name(name):
            raise ValueError(f"unrecognized configuration name {name!r}")

        monkeypatch.setattr(os, "confstr", unknown_name)

    def no_glibc():
        raise AssertionError("mallopt looked up without glibc")

    monkeypatch.setattr(allocator, "_mallopt", no_glibc)
    assert allocator.glibc_version() is None
    environ: dict[str, str] = {}
    assert allocator._tune(environ) == Tuning("unsupported")
    assert environ == {}
    monkeypatch.setattr(allocator, "_done", None)
    monkeypatch.setattr(os, "environ", {})
    assert allocator.keep_freed_memory() == Tuning("unsupported") and os.environ == {}


def test_keep_freed_memory_never_raises_and_acts_once(monkeypatch):
    calls = []

    def broken():
        calls.append(1)
        raise OSError("no mallopt here")

    monkeypatch.setattr(allocator, "_mallopt", broken)
    monkeypatch.setattr(allocator, "glibc_version", lambda: "glibc 2.36")
    monkeypatch.setattr(allocator, "_done", None)
    monkeypatch.setattr(os, "environ", {})
    first = allocator.keep_freed_memory()
    assert first.state == "failed" and not first.active
    assert allocator.keep_freed_memory() is first and calls == [1]


def test_child_environment_drops_the_malloc_settings_and_sets_the_switch():
    environ = {"PATH": "/bin", SWITCH: "0", "MALLOC_TOP_PAD_": "1", **CHILD_ENVIRONMENT}
    assert child_environment(tuned=True, environ=environ) == {"PATH": "/bin"}
    assert child_environment(tuned=False, environ=environ) == {"PATH": "/bin", SWITCH: "0"}
