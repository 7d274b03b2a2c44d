"""What a train or test job is built of: the module from the `module` node, with the `test` node's
query budget and the data module's test loaders; a checkpoint written before the budget was one
value still tests and resumes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate

from ipe_lightning.configs import plain
from ipe_lightning.inference import QueryBudget
from ipe_lightning.tasks import build_module, query_budget
from tests.support.runs import compose_config, run_in_process, tiny_overrides

DATAMODULE = SimpleNamespace(test_set_names=["set5/x2", "set5/x3"])


def test_the_module_is_built_from_the_module_node_with_the_test_nodes_budget(tmp_path):
    cfg = compose_config(["test.max_queries=100", "test.tile=8", "compile=default"], tmp_path)
    module = build_module(cfg, DATAMODULE)
    assert module.budget == query_budget(cfg) == QueryBudget(max_queries=100, tile=8)
    assert module.test_sets == ["set5/x2", "set5/x3"]
    hparams = module.hparams
    assert hparams.net == plain(cfg.model.net) and hparams.model_name == cfg.model.name
    assert hparams.optimizer == plain(cfg.optimizer)
    assert hparams.scheduler == plain(cfg.scheduler)
    assert hparams.compile == "default"


def test_the_default_budget_is_liifs(tmp_path):
    assert query_budget(compose_config([], tmp_path)) == QueryBudget(30000, None)


def test_a_loaded_network_replaces_the_nodes_network(tmp_path):
    cfg = compose_config([], tmp_path)
    network = instantiate(cfg.model.net, _convert_="all")
    module = build_module(cfg, DATAMODULE, net=network)
    assert module.net is network


@pytest.mark.slow  # three tiny runs
def test_a_checkpoint_with_the_budget_as_two_numbers_still_tests_and_resumes(tiny_hr_dir, tmp_path):
    base = tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]")
    trained = run_in_process(base, tmp_path / "train")
    ckpt = trained["checkpoints"]["last"]
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["hyper_parameters"].update(max_queries=4096, tile=None)  # as older runs wrote
    torch.save(checkpoint, ckpt)
    tested = run_in_process([*base, "mode=test", f"ckpt_path={ckpt}"], tmp_path / "test")
    assert tested["status"] == "finished" and set(tested["metrics"]) == {"folder/x2"}
    epochs = checkpoint["epoch"] + 2
    resumed = run_in_process(
        [*base, f"ckpt_path={ckpt}", f"trainer.max_epochs={epochs}"], tmp_path / "resumed"
    )
    assert resumed["status"] == "finished"
    assert resumed["global_step"] > trained["global_step"]


def official_liif_checkpoint(path):
    """A tiny network saved as the official LIIF code saves one: no model name but its head."""
    from tests.support.networks import tiny_net

    state = {
        ("imnet." + key.removeprefix("mlp.") if key.startswith("mlp.") else key): value
        for key, value in tiny_net().state_dict().items()
    }
    args = {
        "encoder_spec": {"name": "edsr-baseline", "args": {"n_resblocks": 1, "n_feats": 8}},
        "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [16]}},
    }
    torch.save({"model": {"name": "liif", "args": args, "sd": state}}, path)
    return path


def test_the_checkpoint_names_the_network_and_a_model_option_naming_another_is_ignored(
    tmp_path, caplog
):
    from ipe_lightning.models import LIIF
    from ipe_lightning.tasks import checkpoint_network

    path = official_liif_checkpoint(tmp_path / "liif.pth")
    cfg = compose_config(["mode=test", f"ckpt_path={path}"], tmp_path)
    network, name = checkpoint_network(cfg)
    assert isinstance(network, LIIF) and name == "liif"
    assert "ignored" not in caplog.text  # model= not given: nothing to say
    cfg = compose_config(["mode=test", f"ckpt_path={path}", "model=metasr"], tmp_path)
    assert checkpoint_network(cfg)[1] == "liif"
    (notice,) = [line for line in caplog.text.splitlines() if "ignored" in line]
    assert "model=metasr" in notice and "holds liif" in notice


@pytest.mark.slow  # a tiny test job
def test_a_test_jobs_record_and_title_name_the_checkpoints_model(tiny_hr_dir, tmp_path, caplog):
    from ipe_lightning.report_console import print_record

    path = official_liif_checkpoint(tmp_path / "liif.pth")
    overrides = [*tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"), "mode=test"]
    record = run_in_process([*overrides, f"ckpt_path={path}"], tmp_path / "test")  # ipe_liif
    assert (record["model"], record["run_name"]) == ("liif", "liif")
    assert record["checkpoints"]["evaluated"] == str(path)
    print_record(record)
    assert "liif: test results" in caplog.text and "ipe_liif" not in caplog.text
