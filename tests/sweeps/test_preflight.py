"""Preflight on the submitting host: a job whose data is missing or whose config cannot build
stops the sweep in seconds with exit status 2 and nothing launched; ``preflight=false`` skips it."""

from __future__ import annotations

from ipe_lightning.sweeps.cli import main
from ipe_lightning.sweeps.definitions import REPO_CONF_DIR
from ipe_lightning.sweeps.launch import hydra_session
from ipe_lightning.sweeps.preflight import preflight


def test_missing_data_fails_the_preflight_and_nothing_is_launched(tmp_path, capsys):
    sweep_dir = tmp_path / "s"
    code = main(["table4", "debug=tiny", "data.root=/does/not/exist", f"sweep_dir={sweep_dir}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "preflight: table4_liif: DatasetNotFoundError: data.root not found" in err
    assert "7 of 7 job(s) cannot start" in err
    assert not sweep_dir.exists() or not any(p.is_dir() for p in sweep_dir.iterdir())


def test_a_bad_value_fails_the_preflight_naming_the_option(tiny_data_root, tmp_path, capsys):
    code = main(
        [
            "table4",
            "debug=tiny",
            f"data.root={tiny_data_root}",
            "model.net.encoding.bandwidth=-3",
            f"sweep_dir={tmp_path / 's'}",
        ]
    )
    assert code == 2
    assert "model.net.encoding.bandwidth" in capsys.readouterr().err


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
