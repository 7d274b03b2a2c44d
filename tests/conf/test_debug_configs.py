"""The debug presets: debug=smoke runs wherever it is started and on whatever data it is pointed
at; the lightning-hydra-template presets (fdr, profiler) and the hparams_search multirun build the
trainer and the jobs they say."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from ipe_lightning.data.crops import largest_crop_side
from tests.support.runs import compose_config

# Table 1's RDN row, and the row with the largest training crops (U(1,16)).
ROWS = ["table1_rdn_ipe_liif", "table3_u1_16_ipe_liif"]


def machine_accelerator() -> str:
    return "CUDAAccelerator" if torch.cuda.is_available() else "CPUAccelerator"


def build_trainer(cfg):
    return instantiate(cfg.trainer, logger=False, callbacks=[], enable_progress_bar=False)


def test_debug_smoke_runs_a_paper_row_on_this_machine(tmp_path):
    """A paper row asks for a GPU; under debug=smoke the trainer is what this machine has."""
    cfg = compose_config(["experiment=table1_rdn_ipe_liif", "debug=smoke"], output_dir=tmp_path)
    assert type(build_trainer(cfg).accelerator).__name__ == machine_accelerator()


@pytest.mark.parametrize("trainer, accelerator", [("cpu", "cpu"), ("ddp", "gpu")])
def test_a_trainer_on_the_command_line_still_wins_over_debug_smoke(trainer, accelerator):
    cfg = compose_config(["experiment=table1_rdn_liif", "debug=smoke", f"trainer={trainer}"])
    assert cfg.trainer.accelerator == accelerator


@pytest.mark.parametrize("row", ROWS)
def test_debug_smoke_fits_the_tiny_tree_without_crop_overrides(row, tiny_data_root, tmp_path):
    """The README's pre-check on the tiny DIV2K tree (96 px images): every training and
    validation image holds the largest crop, and a crop at scale 1 has the queries asked for."""
    cfg = compose_config(
        [
            f"experiment={row}",
            "debug=smoke",
            f"data.root={tiny_data_root}",
            f"data.cache_dir={tmp_path / 'cache'}",
        ],
        output_dir=tmp_path,
    )
    datamodule = instantiate(cfg.data)
    datamodule.check("fit")
    assert datamodule.train_paths and datamodule.val_paths
    assert largest_crop_side(datamodule.inp_size, datamodule.scale_max) <= 96
    assert cfg.data.sample_q <= cfg.data.inp_size**2


def test_debug_presets_write_last_ckpt_after_every_validation():
    """Lightning writes "last" only beside a checkpoint of its own: the best callback (its
    validation-end checkpoint) is what writes last.ckpt after each validation of a short run."""
    for debug in ("smoke", "tiny"):  # fdr and profiler are smoke's
        cfg = compose_config(["experiment=table1_rdn_liif", f"debug={debug}"])
        assert cfg.callbacks.best.save_top_k != 0 and cfg.callbacks.best.save_last, debug
        assert cfg.callbacks.last.save_last, debug  # and every every_n_train_steps


def test_debug_fdr_is_lightnings_fast_dev_run(tmp_path):
    cfg = compose_config(["experiment=table1_rdn_liif", "debug=fdr"], output_dir=tmp_path)
    trainer = build_trainer(cfg)
    assert trainer.fast_dev_run and trainer.num_sanity_val_steps == 0
    assert type(trainer.accelerator).__name__ == machine_accelerator()


def test_debug_profiler_writes_the_profile_into_the_run_directory(tmp_path):
    from pytorch_lightning.profilers import SimpleProfiler

    cfg = compose_config(["debug=profiler"], output_dir=tmp_path)
    trainer = build_trainer(cfg)
    assert isinstance(trainer.profiler, SimpleProfiler)
    assert trainer.profiler.dirpath == str(tmp_path) and trainer.profiler.filename == "profile"


def test_hparams_search_bandwidth_is_a_multirun_of_one_job_per_bandwidth():
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    cfg = compose_config(["hparams_search=bandwidth", "experiment=table4_ipe_liif_l10"])
    assert RunMode(cfg.hydra.mode) == RunMode.MULTIRUN
    params = cfg.hydra.sweeper.params
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    (jobs,) = BasicSweeper.split_arguments(parsed, None)
    assert jobs == [[f"model.net.encoding.bandwidth={value}"] for value in (4, 6, 8, 10, 12, 16)]
    job_cfg = compose_config(["experiment=table4_ipe_liif_l10", *jobs[0]])
    assert job_cfg.model.net.encoding.bandwidth == 4
    assert "bandwidth=4" in job_cfg.tags  # the job says which it is
