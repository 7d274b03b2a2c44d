"""The real Hydra tree: every preset trains and tests through it; experiments match the paper."""

from __future__ import annotations

import csv

import pytest
import torch
from hydra.utils import instantiate

from tests.support.runs import CONF_DIR, compose_config, run_in_process, tiny_overrides

PRESETS = [
    "ipe_liif", "liif", "liif_pe", "metasr", "metasr_pe", "ipe_metasr",
    "lte", "ipe_lte", "ipe_lte_nophase",
]  # fmt: skip
PAPER_TABLES = CONF_DIR.parent / "ipe_lightning" / "resources" / "paper_tables.csv"


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_and_tests_with_edsr_baseline(preset, tiny_hr_dir, tmp_path):
    overrides = [*tiny_overrides(tiny_hr_dir, tmp_path / "cache"), f"model={preset}"]
    record = run_in_process(overrides, tmp_path / "run")
    assert record["status"] == "finished"
    assert record["model"] == preset
    assert record["global_step"] == 6  # 2 epochs x 3 batches: at least two optimiser steps
    assert set(record["metrics"]) == {"folder/x2", "folder/x3"}
    for values in record["metrics"].values():
        assert set(values) == {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}
        assert values["bicubic_psnr"] > 20  # the baseline is computed on the real images
    checkpoint = torch.load(record["checkpoints"]["last"], weights_only=True)
    assert checkpoint["hyper_parameters"]["model_name"] == preset


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_and_tests_with_rdn(preset, tiny_hr_dir, tmp_path):
    """The RDN encoder in every head, shrunk to two blocks of two layers: the wiring is what is
    tested (the full RDN's size: test_encoder_choice_composes_into_every_preset)."""
    overrides = [*tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"), f"model={preset}"]
    small = ["model.net.encoder.n_blocks=2", "model.net.encoder.n_layers=2"]
    record = run_in_process([*overrides, "model/encoder=rdn", *small], tmp_path / "run")
    assert record["status"] == "finished"
    assert set(record["metrics"]) == {"folder/x2"}


@pytest.mark.parametrize("encoder, parameters", [("edsr_baseline", 1_220_416), ("rdn", 21_973_952)])
def test_encoder_choice_composes_into_every_preset(encoder, parameters):
    for preset in PRESETS:
        cfg = compose_config([f"model={preset}", f"model/encoder={encoder}"])
        net = instantiate(cfg.model.net)
        assert sum(p.numel() for p in net.encoder.parameters()) == parameters


def _paper_scales() -> dict[tuple[str, str], set[float]]:
    scales: dict[tuple[str, str], set[float]] = {}
    with open(PAPER_TABLES) as handle:
        for row in csv.DictReader(handle):
            if row["method"] == "bicubic":
                continue  # not trained
            key = (row["table"], row["train_scales"])
            scales.setdefault(key, set()).add(float(row["scale"]))
    return scales


def test_every_experiment_evaluates_exactly_its_tables_scales():
    paper = _paper_scales()
    experiments = sorted(p.stem for p in (CONF_DIR / "experiment").glob("table*.yaml"))
    # the paper's 34 trained rows (6 of one model per scale), plus LTE and IPE-LTE in the Table 1
    # setting on both encoders, plus Table 1's 2 resampling rows (the x4 model at every scale),
    # plus SRNO and IPE-SRNO with the paper's recipe and with SRNO's own
    lte_rows = [name for name in experiments if name.endswith("_lte")]
    srno_rows = [name for name in experiments if name.endswith(("_srno", "_srno_recipe"))]
    assert len(experiments) - len(lte_rows) - len(srno_rows) == 6 + 3 + 12 + 7 + 6 + 2
    assert len(lte_rows) == 4 and len(srno_rows) == 4
    for name in experiments:
        cfg = compose_config([f"experiment={name}"])
        table = name.split("_")[0]
        own_scale = cfg.model.net.get("scale")
        if own_scale is None or cfg.test.resample:  # the table's scales
            train_scales = f"U(1,{cfg.data.scale_max})"
            assert cfg.data.scale_min == 1
        else:  # one model per scale: tested at its own
            train_scales = f"x{own_scale} only"
            assert cfg.data.scale == own_scale, name
        assert {float(s) for s in cfg.eval.scales} == paper[(table, train_scales)], name
        if name.endswith("_srno_recipe"):  # SRNO's configs/train_edsr-sronet.yaml
            assert cfg.trainer.max_epochs == 1050 and cfg.optimizer.lr == 4e-5, name
            assert (cfg.data.batch_size, cfg.data.inp_size) == (64, 128), name
        else:
            assert cfg.trainer.max_epochs == 1000 and cfg.optimizer.lr == 1e-4, name
            assert list(cfg.scheduler.milestones) == [200, 400, 600, 800], name
            assert cfg.data.batch_size == 16, name
        assert cfg.data.images._target_ == "ipe_lightning.data.DIV2K", name
        first_set = next(iter(cfg.eval.sets))
        assert first_set == ("set5" if table == "table2" else "div2k"), name
        assert cfg.run_name == name


def test_table4_ablations_are_overrides_of_ipe_liif():
    widths = {
        "table4_ipe_liif_l4": 576 + 16,
        "table4_ipe_liif_l16": 576 + 64,
        "table4_ipe_liif_cell": 576 + 42,
        "table4_ipe_liif_noskip": 576 + 40,
    }
    for name, in_dim in widths.items():
        cfg = compose_config([f"experiment={name}"])
        assert cfg.model.name in {"ipe_liif"}
        net = instantiate(cfg.model.net)
        assert net.mlp.linears[0].in_features == in_dim, name
    noskip = instantiate(compose_config(["experiment=table4_ipe_liif_noskip"]).model.net)
    assert type(noskip.mlp).__name__ == "PlainMLP"


def test_the_default_config_is_the_embedded_job():
    cfg = compose_config([])
    assert cfg.mode == "train" and cfg.model.name == "ipe_liif"
    bundled = "ipe_lightning.data.BundledPhotos"
    assert cfg.data.images._target_ == bundled
    assert [s.images._target_ for s in cfg.eval.sets.values()] == [bundled]
    assert cfg.trainer.accelerator == "cpu"
