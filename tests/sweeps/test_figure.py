"""``sweep.py figure``: the paper-style qualitative comparison from a sweep's own networks."""

from __future__ import annotations

import json

import pytest
import torch

from ipe_lightning.metrics import psnr_per_image
from ipe_lightning.sweeps.figure import (
    FigureRow,
    checkpoint_of,
    crop_psnr,
    draw_figure,
    figure_command,
    most_different_crop,
    parse_crop,
    save_figure,
)


def noisy(hr: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (hr + sigma * torch.randn(hr.shape, generator=generator)).clamp(0, 1)


def rows_with_one_region_that_differs(scales=(4.0, 12.0, 30.0)) -> list[FigureRow]:
    hr = torch.rand(1, 3, 96, 80, generator=torch.Generator().manual_seed(0))
    rows = []
    for index, scale in enumerate(scales):
        worse = noisy(hr, 0.05, 10 + index)
        worse[..., 40:60, 10:30] = 0  # the variants differ here only
        images = {"bicubic": noisy(hr, 0.1, index), "A": noisy(hr, 0.05, 20 + index), "B": worse}
        rows.append(FigureRow(scale, hr, images))
    return rows


def test_without_a_crop_the_window_where_the_variants_differ_most_is_chosen():
    top, left, height, width = most_different_crop(rows_with_one_region_that_differs(), 24)
    assert (height, width) == (24, 24)
    assert top <= 40 and top + 24 >= 60 and left <= 10 and left + 24 >= 30


def test_with_one_variant_the_crop_is_where_it_differs_most_from_bicubic():
    hr = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    sr = noisy(hr, 0.02, 5)
    sr[..., 0:16, 48:64] = 1 - sr[..., 0:16, 48:64]
    rows = [FigureRow(4.0, hr, {"bicubic": noisy(hr, 0.02, 0), "only": sr})]
    assert most_different_crop(rows, 16) == (0, 48, 16, 16)


def test_the_psnr_under_a_crop_is_that_of_the_crop():
    hr = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    sr = noisy(hr, 0.1, 3)
    expected = psnr_per_image(sr[..., 5:25, 8:18], hr[..., 5:25, 8:18], shave=0, channel="y")
    assert crop_psnr(sr, hr, (5, 8, 20, 10), "y") == pytest.approx(float(expected))


def test_crop_option():
    assert parse_crop("[10,20,32]") == (10, 20, 32, 32)
    assert parse_crop("[10,20,32,16]") == (10, 20, 32, 16)
    with pytest.raises(ValueError, match="crop"):
        parse_crop("[1,2]")


def test_one_row_per_scale_with_every_crop_labelled_and_a_debug_mark(tmp_path):
    rows = rows_with_one_region_that_differs()
    box = (36, 6, 24, 24)
    figure = draw_figure(rows, box, title="Table 4", caption="crop chosen", debug="tiny")
    axes = figure.axes
    assert len(axes) == 3 * 5  # [whole | bicubic | A | B | HR] per scale
    assert [axes[5 * i].get_ylabel() for i in range(3)] == ["×4", "×12", "×30"]
    psnr_b = crop_psnr(rows[1].images["B"], rows[1].hr, box, "rgb")
    assert axes[5 + 3].get_xlabel() == f"B\n{psnr_b:.2f} dB"
    assert axes[0].patches, "the zoom box is drawn on the whole image"
    assert any("DEBUG RUN (debug=tiny)" in text.get_text() for text in figure.texts)
    pdf, png = save_figure(figure, tmp_path / "figure")
    assert pdf.read_bytes()[:5] == b"%PDF-" and png.read_bytes()[:4] == b"\x89PNG"
    plain = draw_figure(rows, box, title="Table 4")
    assert not any("DEBUG" in text.get_text() for text in plain.texts)


def test_the_checkpoint_is_found_where_the_record_says_or_beside_a_moved_job(tmp_path):
    job = tmp_path / "moved" / "job"
    (job / "checkpoints").mkdir(parents=True)
    (job / "checkpoints" / "last.ckpt").write_bytes(b"x")
    record = {"checkpoints": {"best": None, "last": "/elsewhere/job/checkpoints/last.ckpt"}}
    assert checkpoint_of(job, record) == job / "checkpoints" / "last.ckpt"
    assert checkpoint_of(job, {"checkpoints": {}}) is None


def fake_sweep(sweep_dir, data_root, jobs):
    """A sweep directory whose finished jobs hold untrained networks (the figure only needs a
    network per job and the job's evaluation set)."""
    from hydra.utils import instantiate

    from ipe_lightning.configs import plain
    from ipe_lightning.sweeps.launch import compose_job, hydra_session
    from tests.support.runs import CONF_DIR

    manifest_jobs = []
    with hydra_session(CONF_DIR) as hydra:
        for seed, name in enumerate(jobs):
            overrides = [f"experiment={name}", "debug=tiny", f"data.root={data_root}"]
            cfg = compose_job(hydra, overrides)
            torch.manual_seed(seed)
            network = instantiate(plain(cfg.model.net), _convert_="all")
            checkpoints = sweep_dir / name / "checkpoints"
            checkpoints.mkdir(parents=True)
            torch.save(
                {
                    "state_dict": {f"net.{k}": v for k, v in network.state_dict().items()},
                    "hyper_parameters": {"net": plain(cfg.model.net)},
                },
                checkpoints / "last.ckpt",
            )
            record = {
                "version": 1,
                "status": "finished",
                "overrides": overrides,
                "checkpoints": {"best": None, "last": str(checkpoints / "last.ckpt")},
                "metrics": {"div2k/x4": {"psnr": 1.0, "ssim": 0.1}},
            }
            (sweep_dir / name / "metrics.json").write_text(json.dumps(record))
            manifest_jobs.append({"name": name, "overrides": overrides})
    from ipe_lightning.sweeps.definitions import load_sweep
    from ipe_lightning.sweeps.layout import layout_to_dict

    definition = load_sweep("table4")
    (sweep_dir / "sweep.json").write_text(
        json.dumps(
            {
                "sweep": "table4",
                "definition": str(definition.path),
                "title": definition.title,
                "created": "now",
                "group": "g",
                "jobs": manifest_jobs,
                "layout": layout_to_dict(definition.layout),
            }
        )
    )


def test_the_figure_of_a_sweep_uses_each_jobs_network_on_its_eval_image(
    tmp_path, tiny_data_root, capsys
):
    sweep_dir = tmp_path / "sweep"
    fake_sweep(sweep_dir, tiny_data_root, ["table4_liif", "table4_ipe_liif_l10"])
    assert figure_command([str(sweep_dir), "image=0802", "scales=[4,30]"]) == 0
    out = capsys.readouterr().out
    assert "chosen where the variants' crop PSNR differ most" in out
    assert (sweep_dir / "figure_div2k_0802.png").read_bytes()[:4] == b"\x89PNG"
    assert (sweep_dir / "figure_div2k_0802.pdf").read_bytes()[:5] == b"%PDF-"
    crop = [str(sweep_dir), "crop=[8,8,16]", "scales=[4]", f"out={tmp_path / 'given'}"]
    assert figure_command(crop) == 0
    assert "crop top=8, left=8, 16x16 HR pixels (given)" in capsys.readouterr().out
    assert figure_command([str(sweep_dir), "image=nope"]) == 2
    assert "image='nope' is not in the set" in capsys.readouterr().err
