"""The CPU inference decode's layout is measured once per machine, cached, and never changes the
outputs: every candidate layout decodes exactly what the naive decoder does."""

from __future__ import annotations

import json
import os
from collections import Counter
from functools import partial

import pytest
import torch

from ipe_lightning.coords import make_cell, make_coord
from ipe_lightning.models import IPE, LIIF, EDSRBaseline, FastDecoder, NaiveDecoder
from ipe_lightning.models import decode_calibration as calibration
from ipe_lightning.models.fast_decoder import DEFAULT_LAYOUT, DecodeLayout
from ipe_lightning.models.mlp import PlainMLP, SkipMLP

CPU = torch.device("cpu")
TOLERANCE = 1e-5  # as tests/models/test_fast_decoder.py
FASTEST = DecodeLayout(8192, stacked_inputs=True)


class CountingTimer:
    """A stand-in for the clock: :data:`FASTEST` takes half the time of the others."""

    def __init__(self) -> None:
        self.calls: Counter[DecodeLayout] = Counter()

    def __call__(self, layout: DecodeLayout, case: calibration.CalibrationCase) -> float:
        self.calls[layout] += 1
        return 0.5 if layout == FASTEST else 1.0

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder of the test's own, no choice made yet in this process, one round of timings
    of a tiny decode."""
    monkeypatch.setenv(calibration.CACHE_DIR_VARIABLE, str(tmp_path))
    monkeypatch.delenv(calibration.SWITCH_VARIABLE, raising=False)
    monkeypatch.setattr(calibration, "_chosen", {})
    monkeypatch.setattr(calibration, "CALIBRATION_ROWS", 64)
    monkeypatch.setattr(calibration, "BUDGET_S", 0.0)
    monkeypatch.setattr(calibration, "_load_average", lambda: 0.0)  # a quiet machine
    return tmp_path


def forget_this_process(monkeypatch) -> None:
    monkeypatch.setattr(calibration, "_chosen", {})


def test_the_layout_is_chosen_once_and_read_back_from_the_cache(cache, monkeypatch):
    timer = CountingTimer()
    choice = calibration.inference_choice(CPU, timer)
    assert choice["layout"] == FASTEST and choice["source"] == "calibrated"
    assert timer.calls == dict.fromkeys(calibration.CANDIDATES, 1)  # one round, every candidate
    assert calibration.inference_choice(CPU, timer)["layout"] == FASTEST
    forget_this_process(monkeypatch)  # a new process reads the file
    again = calibration.inference_choice(CPU, timer)
    assert again["layout"] == FASTEST and again["source"] == "cached"
    assert timer.total == len(calibration.CANDIDATES)  # no second timing
    assert [path.name for path in cache.iterdir()] == [
        calibration.cache_path(calibration.machine_key(CPU)).name
    ]


@pytest.mark.parametrize(
    "damage", ["missing", "empty", "torn", "not_json", "wrong_fields", "zero_rows", "list"]
)
def test_a_missing_or_corrupt_cache_file_is_measured_again(cache, monkeypatch, damage):
    timer = CountingTimer()
    path = calibration.cache_path(calibration.machine_key(CPU))
    calibration.inference_choice(CPU, timer)
    text = path.read_text()
    damaged = {
        "empty": "",
        "torn": text[: len(text) // 2],
        "not_json": "\x00\x01",
        "wrong_fields": json.dumps({**json.loads(text), "layout": {"rows": 3}}),
        "zero_rows": json.dumps({**json.loads(text), "layout": {"row_block": 0}}),
        "list": "[1, 2]",
    }
    if damage == "missing":
        path.unlink()
    else:
        path.write_text(damaged[damage])
    forget_this_process(monkeypatch)
    assert calibration.inference_choice(CPU, timer)["source"] == "calibrated"
    assert timer.total == 2 * len(calibration.CANDIDATES)
    assert calibration.read_choice(path, calibration.machine_key(CPU))["layout"] == FASTEST


def test_another_machine_key_is_measured_again(cache, monkeypatch):
    timer = CountingTimer()
    calibration.inference_choice(CPU, timer)
    other = {**calibration.machine_key(CPU), "cpu": "Intel(R) Xeon(R) with AVX-512"}
    monkeypatch.setattr(calibration, "machine_key", lambda device: other)
    assert calibration.inference_choice(CPU, timer)["source"] == "calibrated"
    assert timer.total == 2 * len(calibration.CANDIDATES)
    # a file holding another key (a hash collision, a copied cache) is not taken either
    path = calibration.cache_path(other)
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "key": {**other, "threads": 99}}))
    assert calibration.read_choice(path, other) is None


def test_a_failed_write_leaves_no_file_and_the_old_one_whole(cache, monkeypatch):
    path = cache / "decode-layout-test.json"
    choice = {"key": {"cpu": "x"}, "layout": DEFAULT_LAYOUT, "seconds": {}}
    calibration.write_choice(path, choice)
    before = path.read_text()

    def interrupted(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(OSError, match="disk full"):
        calibration.write_choice(path, {**choice, "layout": FASTEST})
    assert path.read_text() == before
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temporary file left


def test_a_cache_that_cannot_be_written_still_gives_the_measured_choice(cache, monkeypatch):
    def refuse(path, choice):
        raise PermissionError("read-only")

    monkeypatch.setattr(calibration, "write_choice", refuse)
    assert calibration.inference_choice(CPU, CountingTimer())["layout"] == FASTEST


def test_a_layout_barely_faster_than_the_default_does_not_replace_it(cache):
    def timer(layout, case):
        return 0.99 if layout == FASTEST else 1.0

    assert calibration.calibrate(timer)["layout"] == DEFAULT_LAYOUT


def test_switched_off_on_cuda_and_for_small_decodes_nothing_is_timed(cache, monkeypatch):
    timer = CountingTimer()
    assert calibration.inference_layout(CPU, rows=4096, timer=timer) == DEFAULT_LAYOUT
    assert calibration.inference_choice(torch.device("cuda"), timer)["source"] == "default"
    monkeypatch.setenv(calibration.SWITCH_VARIABLE, "0")
    assert calibration.inference_layout(CPU, rows=10**6, timer=timer) == DEFAULT_LAYOUT
    assert timer.total == 0 and not list(cache.iterdir())
    # a small decode takes a choice once it is made
    monkeypatch.setenv(calibration.SWITCH_VARIABLE, "1")
    assert calibration.inference_layout(CPU, rows=4097, timer=timer) == FASTEST
    assert calibration.inference_layout(CPU, rows=10, timer=timer) == FASTEST


def test_the_timed_decode_runs_every_candidate_to_the_same_result(cache):
    case = calibration.CalibrationCase(rows=64, dtype=torch.float64)
    expected = case.decode(DEFAULT_LAYOUT)
    for layout in calibration.CANDIDATES:
        assert calibration.time_layout(layout, case) > 0
        assert (case.decode(layout) - expected).abs().max() <= TOLERANCE


def pair(mlp) -> tuple[LIIF, LIIF]:
    """The same IPE-LIIF with the naive and with the fast decoder (same weights)."""
    naive, fast = (
        LIIF(EDSRBaseline(n_resblocks=1, n_feats=4), encoding=IPE(4), mlp=mlp, decoder=decoder)
        for decoder in (NaiveDecoder, FastDecoder)
    )
    fast.load_state_dict(naive.state_dict())
    return naive.double(), fast.double()


def decode(net: LIIF, hr_size: tuple[int, int]) -> torch.Tensor:
    lr = torch.rand(2, 3, 7, 9, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    coord = make_coord(hr_size).double().expand(2, -1, -1)
    cell = make_cell(hr_size, coord.shape[1]).double().expand(2, -1, -1)
    with torch.no_grad():
        return net(lr * 2 - 1, coord, cell)


@pytest.mark.parametrize("row_block", [None, 5, 300])
@pytest.mark.parametrize("layout", calibration.CANDIDATES, ids=str)
@pytest.mark.parametrize("mlp", ["plain", "skip"])
def test_every_candidate_layout_decodes_what_the_naive_decoder_does(
    monkeypatch, layout, row_block, mlp
):
    """Each candidate as chosen, and with its stacking over small blocks (several blocks and a
    partial last one), is the naive decoder's function."""
    torch.manual_seed(0)
    naive, fast = pair(partial({"plain": PlainMLP, "skip": SkipMLP}[mlp], hidden=(16, 16, 16)))
    if row_block is not None:
        layout = DecodeLayout(row_block, layout.stacked_inputs)
    monkeypatch.setattr("ipe_lightning.models.decoders.inference_layout", lambda *a, **k: layout)
    expected = decode(naive, (17, 23))
    actual = decode(fast, (17, 23))
    scale = max(1.0, expected.abs().max().item())
    assert (actual - expected).abs().max().item() <= TOLERANCE * scale


def test_decoding_with_the_calibrated_layout_equals_decoding_with_the_default(cache, monkeypatch):
    """Through the whole path: a decode large enough to calibrate (2 x 41 x 53 queries x 4
    branches > 4096 rows) takes the measured layout and gives the default layout's outputs."""
    torch.manual_seed(1)
    _, fast = pair(partial(SkipMLP, hidden=(16, 16)))
    timer = CountingTimer()
    monkeypatch.setattr(
        "ipe_lightning.models.decoders.inference_layout",
        partial(calibration.inference_layout, timer=timer),
    )
    calibrated = decode(fast, (41, 53))
    assert timer.total == len(calibration.CANDIDATES)
    monkeypatch.setenv(calibration.SWITCH_VARIABLE, "0")
    default = decode(fast, (41, 53))
    assert (calibrated - default).abs().max().item() <= TOLERANCE


def test_training_decodes_never_calibrate(cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the training path asked for the inference layout")

    monkeypatch.setattr("ipe_lightning.models.decoders.inference_layout", refuse)
    _, fast = pair(partial(SkipMLP, hidden=(8,)))
    lr = torch.rand(1, 3, 40, 40, dtype=torch.float64)
    coord = make_coord((80, 80)).double().unsqueeze(0)
    cell = make_cell((80, 80), coord.shape[1]).double().unsqueeze(0)
    fast(lr, coord, cell).sum().backward()


def test_a_calibration_on_an_oversubscribed_machine_serves_its_process_only(cache, monkeypatch):
    monkeypatch.setattr(calibration, "_load_average", lambda: 5.0)
    monkeypatch.setattr(calibration, "_available_cpus", lambda: 2)
    timer = CountingTimer()
    choice = calibration.inference_choice(CPU, timer)
    assert choice["layout"] == FASTEST and choice["load_average"] == 5.0 and not choice["kept"]
    assert calibration.inference_choice(CPU, timer) is choice  # this process keeps it
    assert not list(cache.iterdir())  # not cached: the next process measures again
    forget_this_process(monkeypatch)
    calibration.inference_choice(CPU, timer)
    assert timer.total == 2 * len(calibration.CANDIDATES)
