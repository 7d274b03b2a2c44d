"""The paper's rows as configs: a table base (``conf/table/``) plus the row's own lines; the
debug presets that let any row run in seconds (``smoke``) or on a laptop (``tiny``)."""

from __future__ import annotations

import copy
import functools

import pytest
import yaml
from omegaconf import OmegaConf

from tests.support.runs import CONF_DIR, compose_config

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def row_file(name: str) -> tuple[dict[str, str], dict]:
    """A row file's defaults (``{group: choice}``, ``/`` and ``override`` stripped) and body."""
    spec = yaml.safe_load((CONF_DIR / "experiment" / f"{name}.yaml").read_text())
    defaults = {}
    for entry in spec.pop("defaults"):
        if entry == "_self_":
            continue
        ((group, choice),) = entry.items()
        defaults[group.removeprefix("override ").lstrip("/")] = choice
    return defaults, spec


def leaves(node: dict, prefix: str = "") -> dict[str, object]:
    found = {}
    for key, value in node.items():
        if isinstance(value, dict):
            found.update(leaves(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


@functools.cache
def _composed(overrides: tuple[str, ...]) -> dict:
    cfg = OmegaConf.to_container(compose_config(list(overrides)), resolve=False)
    del cfg["hydra"]
    return cfg


def composed(overrides: list[str]) -> dict:
    """The job's config as a plain dict, without Hydra's own node."""
    return copy.deepcopy(_composed(tuple(overrides)))


def override_value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    return str(value)


def base_overrides(defaults: dict[str, str]) -> list[str]:
    return [f"+table={defaults['table']}"] + [
        f"{g}={c}" for g, c in defaults.items() if g != "table"
    ]


def test_every_row_is_its_tables_base_with_its_own_lines_and_nothing_else():
    # the paper's 34 trained rows (6 of them one model per scale), plus LTE and IPE-LTE in the
    # Table 1 setting on both encoders, plus Table 1's two resampling rows, plus SRNO and IPE-SRNO
    # (EDSR-baseline) with the paper's recipe and with SRNO's
    assert len(EXPERIMENTS) == 6 + 3 + 12 + 7 + 6 + 4 + 2 + 4
    for name in EXPERIMENTS:
        defaults, body = row_file(name)
        own = [f"{key}={override_value(value)}" for key, value in leaves(body).items()]
        rebuilt = composed([*base_overrides(defaults), *own])
        assert rebuilt == composed([f"experiment={name}"]), name


def test_no_row_restates_what_its_table_base_and_model_already_say():
    for name in EXPERIMENTS:
        defaults, body = row_file(name)
        base_leaves = leaves(composed(base_overrides(defaults)))
        for key, value in leaves(body).items():
            if key in ("run_name", "tags"):
                continue  # the row's own names
            assert base_leaves.get(key) != value, f"{name} restates {key}: {value}"
        assert "scale_min" not in str(body) and "eval" not in body, name  # the base's facts


@pytest.mark.parametrize(
    "command_line, accelerator, strategy",
    [
        ([], "cpu", None),  # the experiments ask for a GPU; tiny runs anywhere
        (["trainer=gpu"], "gpu", None),
        (["trainer=ddp_cpu"], "cpu", "ddp"),
    ],
)
def test_debug_tiny_runs_paper_rows_on_the_cpu_unless_the_command_line_picks(
    command_line, accelerator, strategy
):
    for command in (command_line, list(reversed(["debug=tiny", *command_line]))):
        cfg = compose_config(["experiment=table1_rdn_liif", "debug=tiny", *command])
        assert cfg.trainer.accelerator == accelerator
        assert cfg.trainer.get("strategy") == strategy


def test_debug_smoke_tests_one_image_per_loader_of_a_paper_row(tiny_data_root, tmp_path):
    """Table 1 on DIV2K has 8 loaders of 100 images; smoke tests 8 images (here: of 2 each)."""
    import pytorch_lightning as pl
    import torch
    from hydra.utils import instantiate

    class CountTestImages(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.images: dict[int, int] = {}

        def test_step(self, batch, batch_idx, dataloader_idx=0):
            self.images[dataloader_idx] = self.images.get(dataloader_idx, 0) + 1

    counts = {}
    for debug in ("smoke", "tiny"):
        cfg = compose_config(
            [
                "experiment=table1_edsr_baseline_liif",
                f"debug={debug}",
                "trainer=cpu",
                f"data.root={tiny_data_root}",
                f"data.cache_dir={tmp_path / 'cache'}",
            ],
            output_dir=tmp_path / debug,
        )
        trainer = instantiate(cfg.trainer, logger=False, callbacks=[], enable_progress_bar=False)
        module = CountTestImages()
        trainer.test(module, datamodule=instantiate(cfg.data), verbose=False)
        counts[debug] = module.images
        torch.set_grad_enabled(True)
    assert counts["smoke"] == dict.fromkeys(range(8), 1)
    assert counts["tiny"] == dict.fromkeys(range(8), 2)  # tiny tests every image


# Each row's run name is its file's name; its tags: table, encoder, model, and Table 3's training
# range / Table 4's encoding, MLP and bandwidth.
T4 = ("table4", "edsr_baseline")
ROW_TAGS = {
    "table1_edsr_baseline_ipe_liif": ("table1", "edsr_baseline", "ipe_liif"),
    "table1_edsr_baseline_ipe_lte": ("table1", "edsr_baseline", "ipe_lte"),
    "table1_edsr_baseline_srno": ("table1", "edsr_baseline", "srno"),
    "table1_edsr_baseline_ipe_srno": ("table1", "edsr_baseline", "ipe_srno"),
    "table1_edsr_baseline_srno_srno_recipe": ("table1", "edsr_baseline", "srno", "srno_recipe"),
    "table1_edsr_baseline_ipe_srno_srno_recipe": (
        "table1",
        "edsr_baseline",
        "ipe_srno",
        "srno_recipe",
    ),
    "table1_edsr_baseline_liif": ("table1", "edsr_baseline", "liif"),
    "table1_edsr_baseline_lte": ("table1", "edsr_baseline", "lte"),
    "table1_edsr_baseline_metasr": ("table1", "edsr_baseline", "metasr"),
    "table1_edsr_baseline_x2": ("table1", "edsr_baseline", "edsr_baseline_x2"),
    "table1_edsr_baseline_x3": ("table1", "edsr_baseline", "edsr_baseline_x3"),
    "table1_edsr_baseline_x4": ("table1", "edsr_baseline", "edsr_baseline_x4"),
    "table1_edsr_baseline_x4_bicubic": ("table1", "edsr_baseline", "edsr_baseline_x4", "bicubic"),
    "table1_edsr_baseline_x4_lanczos": ("table1", "edsr_baseline", "edsr_baseline_x4", "lanczos"),
    "table1_rdn_ipe_liif": ("table1", "rdn", "ipe_liif"),
    "table1_rdn_ipe_lte": ("table1", "rdn", "ipe_lte"),
    "table1_rdn_liif": ("table1", "rdn", "liif"),
    "table1_rdn_lte": ("table1", "rdn", "lte"),
    "table1_rdn_metasr": ("table1", "rdn", "metasr"),
    "table2_rdn_ipe_liif": ("table2", "rdn", "ipe_liif"),
    "table2_rdn_liif": ("table2", "rdn", "liif"),
    "table2_rdn_metasr": ("table2", "rdn", "metasr"),
    "table2_rdn_x2": ("table2", "rdn", "rdn_x2"),
    "table2_rdn_x3": ("table2", "rdn", "rdn_x3"),
    "table2_rdn_x4": ("table2", "rdn", "rdn_x4"),
    "table3_u1_16_ipe_liif": ("table3", "edsr_baseline", "ipe_liif", "u1_16"),
    "table3_u1_16_ipe_metasr": ("table3", "edsr_baseline", "ipe_metasr", "u1_16"),
    "table3_u1_16_liif": ("table3", "edsr_baseline", "liif", "u1_16"),
    "table3_u1_16_liif_pe": ("table3", "edsr_baseline", "liif_pe", "u1_16"),
    "table3_u1_16_metasr": ("table3", "edsr_baseline", "metasr", "u1_16"),
    "table3_u1_16_metasr_pe": ("table3", "edsr_baseline", "metasr_pe", "u1_16"),
    "table3_u1_8_ipe_liif": ("table3", "edsr_baseline", "ipe_liif", "u1_8"),
    "table3_u1_8_ipe_metasr": ("table3", "edsr_baseline", "ipe_metasr", "u1_8"),
    "table3_u1_8_liif": ("table3", "edsr_baseline", "liif", "u1_8"),
    "table3_u1_8_liif_pe": ("table3", "edsr_baseline", "liif_pe", "u1_8"),
    "table3_u1_8_metasr": ("table3", "edsr_baseline", "metasr", "u1_8"),
    "table3_u1_8_metasr_pe": ("table3", "edsr_baseline", "metasr_pe", "u1_8"),
    "table4_ipe_liif_cell": (*T4, "ipe_liif", "encoding=ipe_cell", "mlp=skip", "bandwidth=10"),
    "table4_ipe_liif_l10": (*T4, "ipe_liif", "encoding=ipe", "mlp=skip", "bandwidth=10"),
    "table4_ipe_liif_l16": (*T4, "ipe_liif", "encoding=ipe", "mlp=skip", "bandwidth=16"),
    "table4_ipe_liif_l4": (*T4, "ipe_liif", "encoding=ipe", "mlp=skip", "bandwidth=4"),
    "table4_ipe_liif_noskip": (*T4, "ipe_liif", "encoding=ipe", "mlp=plain", "bandwidth=10"),
    "table4_liif": (*T4, "liif", "encoding=cell", "mlp=plain", "bandwidth=none"),
    "table4_liif_pe": (*T4, "liif_pe", "encoding=pe", "mlp=plain", "bandwidth=10"),
}


def test_every_row_is_named_after_its_file_and_tagged_by_its_table_encoder_and_model():
    assert sorted(ROW_TAGS) == EXPERIMENTS
    for name, tags in ROW_TAGS.items():
        cfg = compose_config([f"experiment={name}"])
        assert (cfg.run_name, tuple(cfg.tags)) == (name, tags), name


def test_no_row_states_its_own_names():
    for name in EXPERIMENTS:
        _, body = row_file(name)
        assert not {"run_name", "tags"} & set(body), name


def test_without_an_experiment_the_run_is_named_after_its_model():
    cfg = compose_config(["model=lte"])
    assert (cfg.run_name, list(cfg.tags)) == ("lte", [])
