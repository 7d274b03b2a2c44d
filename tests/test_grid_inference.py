"""Whole-image upsampling with a grid decoder (SRNO) decodes the HR image as one grid, exactly.

Oracle: the network called once on the LR image with every HR pixel centre as one query grid
(``net(lr, coord, cell)``, float64), the centres and the cell written out here from the LIIF
convention (centre ``-1 + (2 i + 1) / H``, cell ``2 / H``), not taken from ``ipe_lightning.coords``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from ipe_lightning.inference import (
    QueryBudget,
    decode_fields,
    encode_in_tiles,
    from_network_range,
    to_network_range,
    upsample,
)
from ipe_lightning.models import EDSRBaseline
from ipe_lightning.models.srno import SRNO
from ipe_lightning.results import JobResult, read_record
from ipe_lightning.runtime.job import Job
from ipe_lightning.runtime.record import FinishedRecord
from tests.support.networks import tiny_net

LR_SIZE = (9, 11)
HR_SIZE = (23, 30)  # x2.6 / x2.7: 690 queries


def tiny_srno(seed: int = 0) -> SRNO:
    """A float64 SRNO (EDSR 1 block x 4 channels, width 16, 4 heads) with drawn weights."""
    torch.manual_seed(seed)
    net = SRNO(EDSRBaseline(n_resblocks=1, n_feats=4), width=16, heads=4, head_hidden=8)
    return net.double().eval()


def lr_image(seed: int = 1) -> torch.Tensor:
    return torch.rand(2, 3, *LR_SIZE, generator=torch.Generator().manual_seed(seed)).double()


def pixel_grid(rows: range, height: int, width: int, batch: int):
    """The centres ``(B, len(rows), W, 2)`` of HR rows ``rows`` and the cell of an ``H x W``
    image."""
    ys = torch.tensor([-1 + (2 * i + 1) / height for i in rows], dtype=torch.float64)
    xs = torch.tensor([-1 + (2 * j + 1) / width for j in range(width)], dtype=torch.float64)
    coord = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).expand(batch, -1, -1, -1)
    cell = torch.tensor([2 / height, 2 / width], dtype=torch.float64).expand_as(coord)
    return coord, cell


def one_grid_oracle(net: SRNO, image: torch.Tensor, rows: range | None = None) -> torch.Tensor:
    """``(B, 3, len(rows), W)`` in [0, 1]: the rows of the HR image, all of ``rows`` decoded
    together in one call of the network."""
    height, width = HR_SIZE
    rows = range(height) if rows is None else rows
    coord, cell = pixel_grid(rows, height, width, image.shape[0])
    with torch.no_grad():
        rgb = net(to_network_range(image), coord, cell)
    return from_network_range(rgb).permute(0, 3, 1, 2)


@pytest.mark.parametrize(
    "options",
    [
        {"max_queries": 10**6},  # one shot
        {"max_queries": 97},  # 8 chunks per image, three passes
        {"max_queries": 97, "tile": 4},  # and the encoder in 4x4 LR tiles with halos
        {"tile": 5},
    ],
    ids=["one-shot", "chunked", "chunked-tiled", "tiled"],
)
def test_whole_image_upsample_equals_one_call_on_every_pixel(options):
    net, image = tiny_srno(), lr_image()
    expected = one_grid_oracle(net, image)
    inside = ((expected > 0) & (expected < 1)).double().mean()
    assert inside > 0.5  # the comparison is not only of clamped values
    result = upsample(net, image, size=HR_SIZE, **options)
    assert result.shape == (2, 3, *HR_SIZE) and result.dtype == torch.float64
    torch.testing.assert_close(result, expected, rtol=0, atol=1e-12)


def test_tiled_encoding_assembles_the_whole_image_features():
    net, lr = tiny_srno(), to_network_range(lr_image())
    with torch.no_grad():
        whole = net.encode(lr)
        for tile in (1, 3, 4, 11):
            torch.testing.assert_close(encode_in_tiles(net, lr, tile), whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("max_queries", [10**6, 50])
def test_banded_upsample_decodes_each_band_as_a_grid_of_its_own(max_queries):
    net, image, band = tiny_srno(), lr_image(), 7
    result = upsample(net, image, size=HR_SIZE, max_queries=max_queries, band=band)
    bands = [
        one_grid_oracle(net, image, range(top, min(top + band, HR_SIZE[0])))
        for top in range(0, HR_SIZE[0], band)
    ]
    torch.testing.assert_close(result, torch.cat(bands, dim=2), rtol=0, atol=1e-12)
    # Attending to a band instead of the whole image changes the output.
    assert (result - one_grid_oracle(net, image)).abs().max() > 1e-4


def test_a_band_as_tall_as_the_image_is_the_whole_grid():
    net, image = tiny_srno(), lr_image()
    whole = upsample(net, image, size=HR_SIZE)
    torch.testing.assert_close(
        upsample(net, image, size=HR_SIZE, band=HR_SIZE[0]), whole, rtol=0, atol=0
    )


def test_a_local_head_ignores_the_band():
    net, image = tiny_net(), lr_image().float()
    torch.testing.assert_close(
        upsample(net, image, scale=2.5, band=3), upsample(net, image, scale=2.5), rtol=0, atol=0
    )


@pytest.mark.parametrize("band", [0, -2, True, 2.5])
def test_a_band_must_be_a_positive_number_of_rows(band):
    with pytest.raises(ValueError, match="band must be a positive number of HR rows"):
        upsample(tiny_srno(), lr_image(), size=HR_SIZE, band=band)


def test_grid_upsample_reports_one_progress_step():
    calls = []
    upsample(tiny_srno(), lr_image(), size=HR_SIZE, progress=lambda *a: calls.append(a))
    assert calls == [(1, 1)]


def test_the_budget_reads_the_band_and_hands_every_option_to_upsample():
    test_node = {"max_queries": 500, "tile": None, "resample": None, "grid_band": 7}
    budget = QueryBudget.from_config(test_node)
    assert budget.grid_band == 7
    assert QueryBudget.from_config({"max_queries": 500}).grid_band is None  # older configs
    net, image = tiny_srno(), lr_image()
    torch.testing.assert_close(
        upsample(net, image, size=HR_SIZE, **budget.options()),
        upsample(net, image, size=HR_SIZE, max_queries=500, band=7),
        rtol=0,
        atol=0,
    )


def test_the_record_names_chunk_and_band_of_a_grid_decoder_only():
    budget = QueryBudget(max_queries=4096, grid_band=500)
    assert decode_fields(tiny_srno(), budget) == {"grid_decode": {"chunk": 4096, "band": 500}}
    assert decode_fields(tiny_srno(), QueryBudget()) == {
        "grid_decode": {"chunk": 30000, "band": None}
    }
    assert decode_fields(tiny_net(), budget) == {}


def test_a_finished_test_of_a_grid_decoder_records_its_chunk_and_band(tmp_path):
    cfg = OmegaConf.create({"mode": "test", "paths": {"output_dir": str(tmp_path)}})
    trainer = SimpleNamespace(
        callback_metrics={"test/div2k/x4/psnr": torch.tensor(28.5)},
        global_step=0,
        checkpoint_callbacks=[],
        loggers=[],
    )
    module = SimpleNamespace(net=tiny_srno(), budget=QueryBudget(max_queries=4096, grid_band=9))
    FinishedRecord(Job(cfg)).on_test_end(trainer, module)
    record = read_record(tmp_path)
    assert record["grid_decode"] == {"chunk": 4096, "band": 9}
    assert JobResult.from_record(record).grid_decode == {"chunk": 4096, "band": 9}
    # A local head's record, and records written before the field, have none.
    module = SimpleNamespace(net=tiny_net(), budget=QueryBudget())
    FinishedRecord(Job(cfg)).on_test_end(trainer, module)
    record = read_record(tmp_path)
    assert "grid_decode" not in record
    assert JobResult.from_record(record).grid_decode == {}


def test_predict_checks_the_memory_of_a_grid_decoder_and_writes_its_whole_grid(tmp_path):
    import numpy as np
    from PIL import Image

    from ipe_lightning.inference import from_pil
    from ipe_lightning.predict import predict_files

    source = tmp_path / "in.png"
    pixels = np.random.default_rng(0).integers(0, 256, (*LR_SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(source)
    net = tiny_srno().float()
    summary = predict_files(net, [source], tmp_path / "out", size=list(HR_SIZE))
    (written,) = summary.written
    expected = upsample(net, from_pil(Image.open(source)), size=HR_SIZE)
    got = torch.from_numpy(np.array(Image.open(written))).permute(2, 0, 1).double() / 255
    assert (got - expected[0]).abs().max() <= 0.5 / 255 + 1e-6  # rounded to 8 bits


@pytest.mark.slow  # one tiny training and test, in-process; runs in make test-slow and CI
def test_srno_trains_with_its_own_recipe_and_tests_whole_images_on_the_tiny_tree(tmp_path):
    from ipe_lightning.data.tiny_tree import write_tiny_datasets
    from tests.support.runs import run_in_process

    root = write_tiny_datasets(tmp_path / "data")
    overrides = [
        "experiment=table1_edsr_baseline_srno_srno_recipe",
        "debug=tiny",
        f"data.root={root}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "logger=csv",
    ]
    record = run_in_process(overrides, tmp_path / "run")
    assert record["status"] == "finished" and record["model"] == "srno"
    assert record["grid_decode"] == {"chunk": 4096, "band": None}  # debug=smoke's query budget
    assert set(record["metrics"]) == {f"div2k/x{s}" for s in (2, 3, 4, 6, 12, 18, 24, 30)}
    assert all(math.isfinite(m["psnr"]) for m in record["metrics"].values())
    checkpoint = torch.load(record["checkpoints"]["last"], map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["scheduler"]["_target_"].endswith("WarmupCosine")
