"""Preflight on the submitting host: a job whose data is missing or whose config cannot build
stops the sweep in seconds with exit status 2 and nothing launched; ``--no-preflight`` skips it."""

from __future__ import annotations

import pytest

from ipe_lightning.sweep.cli import main
from ipe_lightning.sweep.launch import hydra_session
from ipe_lightning.sweep.preflight import preflight
from ipe_lightning.sweep_files import REPO_CONF_DIR


def test_missing_data_fails_the_preflight_and_nothing_is_launched(tmp_path, capsys):
    sweep_dir = tmp_path / "s"
    code = main(
        ["table4", "debug=tiny", "data.root=/does/not/exist", "--sweep-dir", f"{sweep_dir}"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "preflight: table4_liif: DatasetNotFoundError: data.root not found" in err
    assert "7 of 7 job(s) cannot start" in err
    assert not sweep_dir.exists() or not any(p.is_dir() for p in sweep_dir.iterdir())


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("model.net.encoding.bandwidth=-3", "SettingError: model.net.encoding.bandwidth"),
        ("seed=abc", "SettingError: seed=abc"),
    ],
)
def test_a_bad_value_fails_the_preflight_naming_the_option(tiny_data_root, override, named):
    # the cause, not Hydra's "InstantiationException: Error in call to target '...':"
    job = ["experiment=table4_ipe_liif_l10", "debug=tiny", f"data.root={tiny_data_root}"]
    with hydra_session(REPO_CONF_DIR) as hydra:
        (problem,) = preflight(hydra, {"ipe_liif": [*job, override]}).values()
    assert problem.startswith(named), problem


def test_the_tiny_tree_passes_and_a_missing_paired_lr_file_does_not(tiny_data_root, tmp_path):
    import shutil

    jobs = {"liif": ["experiment=table4_liif", "debug=tiny", f"data.root={tiny_data_root}"]}
    with hydra_session(REPO_CONF_DIR) as hydra:
        assert preflight(hydra, jobs) == {}
        broken = tmp_path / "broken"
        shutil.copytree(tiny_data_root, broken)
        lr_files = sorted((broken / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X2").iterdir())
        lr_files[0].unlink()
        jobs = {"liif": ["experiment=table4_liif", "debug=tiny", f"data.root={broken}"]}
        (problem,) = preflight(hydra, jobs).values()
    assert lr_files[0].name in problem or "LR" in problem


def test_a_fixed_scale_row_without_its_training_lr_folder_fails_the_preflight(
    tiny_data_root, tmp_path
):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_data_root, broken)
    shutil.rmtree(broken / "DIV2K" / "DIV2K_train_LR_bicubic" / "X3")
    job = ["experiment=table1_edsr_baseline_x3", "debug=tiny"]
    with hydra_session(REPO_CONF_DIR) as hydra:
        assert preflight(hydra, {"x3": [*job, f"data.root={tiny_data_root}"]}) == {}
        (problem,) = preflight(hydra, {"x3": [*job, f"data.root={broken}"]}).values()
    assert problem.startswith("DatasetNotFoundError: x3 LR folder of training images"), problem
    assert str(broken / "DIV2K" / "DIV2K_train_LR_bicubic" / "X3") in problem
