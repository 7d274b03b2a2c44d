"""Shared fixtures: tiny HR folders cut from the photos that ship inside scikit-image."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"


def bundled_photo(name: str) -> np.ndarray:
    with importlib.resources.as_file(importlib.resources.files("skimage") / "data" / name) as path:
        return np.array(Image.open(path).convert("RGB"))


@pytest.fixture(scope="session")
def tiny_hr_dir(tmp_path_factory) -> Path:
    """Three 72x80 HR crops of real photos: large enough for 16-pixel LR crops at scale 4."""
    folder = tmp_path_factory.mktemp("tiny_hr")
    for index, name in enumerate(["astronaut.png", "coffee.png", "chelsea.png"]):
        photo = bundled_photo(name)
        top, left = photo.shape[0] // 3, photo.shape[1] // 3
        Image.fromarray(photo[top : top + 72, left : left + 80]).save(folder / f"{index:04d}.png")
    return folder


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests use tiny tensors: one thread avoids oversubscribing a 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _outside_the_repository(tmp_path_factory, monkeypatch):
    """Each test runs in a fresh folder of its own: what the code writes relative to the working
    directory by default (``multirun/`` of a sweep and its run store, Hydra's ``outputs/``,
    Lightning's ``lightning_logs/``) never lands in the repository. Tests reach the repository
    through ``REPO``, and subprocesses get their own ``cwd``."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True, scope="session")
def _decode_layout_not_calibrated():
    """The fast decoder's default layout in every test and its subprocesses: a calibration
    (models/decode_calibration.py) would time candidates in each process of a loaded machine and
    write into the user's cache. Its own tests switch it on with a cache of their own."""
    import os

    from ipe_lightning.models import decode_calibration

    saved = os.environ.get(decode_calibration.SWITCH_VARIABLE)
    os.environ[decode_calibration.SWITCH_VARIABLE] = "0"
    yield
    if saved is None:
        del os.environ[decode_calibration.SWITCH_VARIABLE]
    else:
        os.environ[decode_calibration.SWITCH_VARIABLE] = saved


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """``DIV2K/`` and ``benchmark/`` in the distributed layout, tiny (``data/tiny_tree.py``)."""
    from ipe_lightning.data.tiny_tree import write_tiny_datasets

    return write_tiny_datasets(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture(scope="session")
def decoded_cache(tmp_path_factory) -> Path:
    """One decoded-image cache for every sweep of the session (the images do not change)."""
    return tmp_path_factory.mktemp("decoded_cache")


@pytest.fixture(scope="session")
def finished_table4_sweep(tiny_data_root, decoded_cache, tmp_path_factory) -> Path:
    """A finished ``debug=tiny`` Table 4 sweep (``sweep.py`` as a process, 7 tiny trainings), run
    once per session: the sweep tests check its rows, the docs tests run report, figure, test and
    predict commands on it."""
    from tests.sweep.support import run_sweep

    work = tmp_path_factory.mktemp("table4_sweep")
    sweep_dir = work / "table4"
    arguments = ["table4", "debug=tiny", f"data.root={tiny_data_root}"]
    arguments += [f"data.cache_dir={decoded_cache}", "data.num_workers=0"]
    result = run_sweep([*arguments, "--sweep-dir", str(sweep_dir)], cwd=work, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return sweep_dir
