"""The fixed-scale rows as configs: EDSR-baseline and RDN trained once per scale on paired DIV2K
crops with the paper's schedule, each tested at its own scale; the resampling rows reuse the x4
training at every scale of Table 1; the tables show the paper's numbers at the rows' own scales and
"–" elsewhere."""

from __future__ import annotations

import functools

import hydra
import pytest
from omegaconf import DictConfig

from ipe_lightning.report.paper_numbers import load_paper_numbers
from ipe_lightning.report.render import render_markdown
from ipe_lightning.report.table import build_table
from ipe_lightning.results import JobResult
from ipe_lightning.sweep.definitions import load_sweep
from ipe_lightning.sweep.identity import training_identity
from tests.support.runs import compose_config

FIXED = {
    "table1_edsr_baseline_x2": ("edsr_baseline_x2", 2, "EDSRBaseline"),
    "table1_edsr_baseline_x3": ("edsr_baseline_x3", 3, "EDSRBaseline"),
    "table1_edsr_baseline_x4": ("edsr_baseline_x4", 4, "EDSRBaseline"),
    "table2_rdn_x2": ("rdn_x2", 2, "RDN"),
    "table2_rdn_x3": ("rdn_x3", 3, "RDN"),
    "table2_rdn_x4": ("rdn_x4", 4, "RDN"),
}
RESAMPLED = {
    "table1_edsr_baseline_x4_bicubic": "bicubic",
    "table1_edsr_baseline_x4_lanczos": "lanczos",
}
TABLE1_SCALES = [2, 3, 4, 6, 12, 18, 24, 30]


@functools.cache
def row(name: str) -> DictConfig:
    """The row's config with the paper settings (composed once per test session)."""
    return compose_config([f"experiment={name}", "data.root=/data"])


@pytest.mark.parametrize("name", sorted(FIXED))
def test_a_fixed_scale_row_trains_on_paired_crops_at_its_scale_as_the_liif_code_base(name):
    model, scale, encoder = FIXED[name]
    cfg = row(name)
    assert (cfg.run_name, cfg.model.name, cfg.model.net.scale) == (name, model, scale)
    assert cfg.model.net.encoder._target_.endswith(encoder)
    # train_edsr-baseline-x2.yaml: paired 48x48 LR crops, every HR pixel, flips, batch 16
    data = cfg.data
    assert (data.scale, data.lr_dir, data.inp_size, data.sample_q) == (scale, None, 48, None)
    assert data.batch_size == 16
    assert (data.repeat, data.val_first_k, data.val_repeat) == (20, 10, 160)
    # Adam 1e-4 halved at epochs 200, 400, 600, 800 of 1000
    assert cfg.optimizer._target_ == "torch.optim.Adam" and cfg.optimizer.lr == 1e-4
    assert list(cfg.scheduler.milestones) == [200, 400, 600, 800] and cfg.scheduler.gamma == 0.5
    assert cfg.trainer.max_epochs == 1000
    assert list(cfg.eval.scales) == [scale]  # tested at its own scale only
    assert cfg.test.resample is None


def test_the_fixed_scale_rows_are_six_distinct_trainings():
    identities = {training_identity(row(name)) for name in FIXED}
    assert len(identities) == len(FIXED)


@pytest.mark.parametrize("name", sorted(RESAMPLED))
def test_a_resampling_row_is_the_x4_training_evaluated_at_every_table1_scale(name):
    cfg = row(name)
    assert training_identity(cfg) == training_identity(row("table1_edsr_baseline_x4"))
    assert (cfg.run_name, cfg.test.resample) == (name, RESAMPLED[name])
    assert list(cfg.eval.scales) == TABLE1_SCALES


def test_paired_data_builds_from_the_row_on_the_tiny_tree(tiny_data_root, tmp_path):
    cfg = compose_config(
        [
            "experiment=table1_edsr_baseline_x3",
            "debug=tiny",
            f"data.root={tiny_data_root}",
            f"data.cache_dir={tmp_path}",
        ]
    )
    module = hydra.utils.instantiate(cfg.data)
    module.check("fit")
    lr_dir = tiny_data_root / "DIV2K" / "DIV2K_train_LR_bicubic" / "X3"
    assert [pair.lr for pair in module.train_pairs] == sorted(lr_dir.glob("*x3.png"))
    batch = next(iter(module.train_dataloader()))
    side = 3 * cfg.data.inp_size
    assert batch["lr"].shape[-1] == cfg.data.inp_size
    assert batch["gt"].shape[1] == cfg.data.sample_q <= side * side


def test_a_network_without_its_own_scale_needs_data_scale_for_paired_data():
    cfg = compose_config(["data=div2k_paired", "model=liif", "data.root=/data"])
    with pytest.raises(Exception, match=r"model\.net\.scale"):
        hydra.utils.instantiate(cfg.data)
    cfg = compose_config(["data=div2k_paired", "model=liif", "data.root=/data", "data.scale=2"])
    assert hydra.utils.instantiate(cfg.data).scale == 2


def one_scale(psnr: float, scale: int, sets: tuple[str, ...] = ("div2k",)) -> JobResult:
    values = {"psnr": psnr, "ssim": 0.9, "bicubic_psnr": 25.0, "bicubic_ssim": 0.8}
    return JobResult("finished", {f"{s}/x{scale}": values for s in sets})


def every_scale(psnr: float) -> JobResult:
    values = {"psnr": psnr, "ssim": 0.8, "bicubic_psnr": 25.0, "bicubic_ssim": 0.8}
    return JobResult("finished", {f"div2k/x{s}": values for s in TABLE1_SCALES})


def markdown_row(text: str, label: str) -> list[str]:
    (line,) = [line for line in text.splitlines() if line.startswith(f"| {label} |")]
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_table1_shows_a_fixed_scale_row_at_its_scale_and_a_dash_elsewhere():
    layout = load_sweep("table1").layout
    results = {
        "table1_edsr_baseline_x2": one_scale(34.50, 2),
        "table1_edsr_baseline_x3": one_scale(30.80, 3),
        "table1_edsr_baseline_x4": one_scale(28.90, 4),
        "table1_edsr_baseline_x4_bicubic": every_scale(20.0),
    }
    table = build_table(layout, results, load_paper_numbers())
    text = render_markdown(table)
    paper = {2: "34.55 / 0.9671", 3: "30.90 / 0.9298", 4: "28.94 / 0.8962"}
    for index, scale in enumerate((2, 3, 4)):
        cells = markdown_row(text, f"EDSR-baseline ×{scale} (one model per scale)")
        assert len(cells) == len(TABLE1_SCALES)
        assert paper[scale] in cells[index] and "Δ" in cells[index]
        assert all(cell == "–" for i, cell in enumerate(cells) if i != index)
    resampled = markdown_row(text, "EDSR-baseline ×4 + bicubic")
    assert all("20.00" in cell and "(" not in cell for cell in resampled)  # no paper number
    assert "EDSR-baseline ×4 + Lanczos — MISSING" in text


def test_table2_shows_a_fixed_scale_row_on_every_benchmark_at_its_scale_only():
    layout = load_sweep("table2").layout
    benchmarks = ("set5", "set14", "b100", "urban100")
    results = {"table2_rdn_x3": one_scale(30.0, 3, benchmarks)}
    text = render_markdown(build_table(layout, results, load_paper_numbers()))
    cells = markdown_row(text, "RDN ×3 (one model per scale)")
    columns = [(group.set, s) for group in layout.columns for s in group.scales]
    for cell, (set_name, scale) in zip(cells, columns, strict=True):
        if scale == 3:
            assert "30.00" in cell and "Δ" in cell, set_name
        else:
            assert cell == "–", (set_name, scale)
    assert "34.71" in cells[columns.index(("set5", 3))]  # the paper's RDN x3 only on Set5
