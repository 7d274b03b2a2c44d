"""``make clean`` removes what can be rebuilt and never a result; results go only when asked."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make(tmp_path: Path, target: str, answer: str = "") -> subprocess.CompletedProcess:
    """``make <target>`` with the repository's Makefile, run in ``tmp_path``."""
    return subprocess.run(
        ["make", "-f", str(REPO / "Makefile"), target, "VENV=venv"],
        cwd=tmp_path,
        input=answer,
        capture_output=True,
        text=True,
        timeout=60,
    )


def a_used_checkout(root: Path) -> None:
    for folder in ["outputs/ipe_liif/t", "multirun/runs", "venv/bin", "pkg/__pycache__"]:
        (root / folder).mkdir(parents=True)
    (root / "outputs/ipe_liif/t/metrics.json").write_text("{}")


def test_clean_removes_the_venv_and_caches_and_keeps_every_result(tmp_path):
    a_used_checkout(tmp_path)
    assert make(tmp_path, "clean").returncode == 0
    assert not (tmp_path / "venv").exists() and not (tmp_path / "pkg/__pycache__").exists()
    assert (tmp_path / "outputs/ipe_liif/t/metrics.json").is_file()
    assert (tmp_path / "multirun/runs").is_dir()


def test_results_are_removed_only_by_their_own_target_and_only_when_confirmed(tmp_path):
    a_used_checkout(tmp_path)
    make(tmp_path, "clean-results", answer="n\n")
    assert (tmp_path / "outputs").is_dir() and (tmp_path / "multirun").is_dir()
    make(tmp_path, "clean-results", answer="y\n")
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()
