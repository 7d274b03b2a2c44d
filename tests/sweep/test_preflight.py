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


def test_the_preflight_says_once_that_it_reads_headers_and_not_per_data_config(
    tiny_data_root, capsys, caplog
):
    """Two data configs (Table 3's U(1,8) and U(1,16)) build two data modules: the note that only
    headers are read is the preflight's one line, not the data module's ``data.cache=false``
    note once per module (the user never set data.cache=false)."""
    from ipe_lightning.sweep.preflight import passes_preflight

    common = ["debug=tiny", "data.inp_size=6", f"data.root={tiny_data_root}"]
    jobs = {
        "u1_8": ["experiment=table3_u1_8_liif", *common],
        "u1_16": ["experiment=table3_u1_16_liif", *common],
    }
    with hydra_session(REPO_CONF_DIR) as hydra:
        assert passes_preflight(hydra, jobs)
    printed = capsys.readouterr().out + caplog.text
    assert "data.cache=false" not in printed
    assert printed.count("by their headers") == 1
