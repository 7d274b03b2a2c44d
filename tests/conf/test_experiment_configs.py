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
    # the paper's 28 trained rows, plus LTE and IPE-LTE in the Table 1 setting on both encoders
    assert len(EXPERIMENTS) == 6 + 3 + 12 + 7 + 4
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
