"""``sweep.py figure``: which networks, image and crop the paper-style comparison shows, from a
sweep's own jobs (the drawing: test_figure_drawing.py)."""

from __future__ import annotations

import json

import pytest
import torch

from ipe_lightning.figure.command import figure_command
from ipe_lightning.figure.drawing import FigureRow
from ipe_lightning.figure.figure import (
    checkpoint_of,
    finished_variants,
    most_different_crop,
    parse_crop,
    seeds_shown,
)
from tests.support.figures import noisy, rows_with_one_region_that_differs


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


def test_crop_option():
    assert parse_crop([10, 20, 32]) == (10, 20, 32, 32)
    assert parse_crop([10, 20, 32, 16]) == (10, 20, 32, 16)
    with pytest.raises(ValueError, match="crop"):
        parse_crop([1, 2])


def test_the_checkpoint_is_found_where_the_record_says_or_beside_a_moved_job(tmp_path):
    job = tmp_path / "moved" / "job"
    (job / "checkpoints").mkdir(parents=True)
    (job / "checkpoints" / "last.ckpt").write_bytes(b"x")
    record = {"checkpoints": {"best": None, "last": "/elsewhere/job/checkpoints/last.ckpt"}}
    assert checkpoint_of(job, record) == job / "checkpoints" / "last.ckpt"
    assert checkpoint_of(job, {"checkpoints": {}}) is None


def test_a_job_that_evaluated_another_jobs_training_is_shown_with_that_checkpoint(tmp_path):
    training = tmp_path / "sweep" / "table4_liif" / "checkpoints" / "last.ckpt"
    training.parent.mkdir(parents=True)
    training.write_bytes(b"x")
    job = tmp_path / "sweep" / "table1_edsr_baseline_liif"
    tested = {"mode": "test", "checkpoints": {"best": None, "last": None}}
    record = {**tested, "checkpoints": {**tested["checkpoints"], "evaluated": str(training)}}
    assert checkpoint_of(job, record) == training
    older = {**tested, "overrides": ["experiment=x", "mode=test", f"ckpt_path={training}"]}
    assert checkpoint_of(job, older) == training  # a record without "evaluated"
    moved = tmp_path / "moved"
    (tmp_path / "sweep").rename(moved)  # the sweep directory moved: the job beside it
    assert checkpoint_of(moved / job.name, record) == moved / "table4_liif/checkpoints/last.ckpt"


def fake_sweep(sweep_dir, data_root, jobs, failed=()):
    """A sweep directory whose finished jobs hold untrained networks (the figure only needs a
    network per job and the job's evaluation set); ``<experiment>_seed-<n>`` jobs run that
    experiment with that seed, as ``--seeds`` sweeps name them; ``failed`` jobs failed."""
    from hydra.utils import instantiate

    from ipe_lightning.configs import plain
    from ipe_lightning.sweep.launch import compose_job, hydra_session
    from ipe_lightning.sweep_files import split_seed
    from tests.support.runs import CONF_DIR

    manifest_jobs = []
    with hydra_session(CONF_DIR) as hydra:
        for index, name in enumerate(jobs):
            experiment, seed = split_seed(name)
            overrides = [f"experiment={experiment}", "debug=tiny", f"data.root={data_root}"]
            overrides += [f"seed={seed}"] if seed is not None else []
            cfg = compose_job(hydra, overrides)
            torch.manual_seed(index)
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
                "status": "failed" if name in failed else "finished",
                "overrides": overrides,
                "checkpoints": {"best": None, "last": str(checkpoints / "last.ckpt")},
                "metrics": {"div2k/x4": {"psnr": 1.0, "ssim": 0.1}},
            }
            (sweep_dir / name / "metrics.json").write_text(json.dumps(record))
            manifest_jobs.append({"name": name, "overrides": overrides})
    from ipe_lightning.sweep.definitions import load_sweep
    from ipe_lightning.table_layout import layout_to_dict

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
    assert figure_command([str(sweep_dir), "--image", "0802", "--scales", "4", "30"]) == 0
    out = capsys.readouterr().out
    assert "chosen where the variants' crop PSNR differ most" in out
    assert (sweep_dir / "figure_div2k_0802.png").read_bytes()[:4] == b"\x89PNG"
    assert (sweep_dir / "figure_div2k_0802.pdf").read_bytes()[:5] == b"%PDF-"
    crop = [str(sweep_dir), "--crop", "8", "8", "16", "--scales", "4", "--out", str(tmp_path)]
    assert figure_command(crop) == 0
    assert "crop top=8, left=8, 16x16 HR pixels (given)" in capsys.readouterr().out
    assert figure_command([str(sweep_dir), "--image", "nope"]) == 2
    assert "image='nope' is not in the set" in capsys.readouterr().err


def test_the_figure_keeps_the_rows_whose_training_was_reused(tmp_path, tiny_data_root):
    sweep_dir = tmp_path / "sweep"
    fake_sweep(sweep_dir, tiny_data_root, ["table4_liif", "table4_ipe_liif_l10"])
    reused = sweep_dir / "table4_liif" / "checkpoints" / "last.ckpt"
    evaluation = sweep_dir / "table4_ipe_liif_l10"
    record = json.loads((evaluation / "metrics.json").read_text())
    record["mode"] = "test"
    record["overrides"] += ["mode=test", f"ckpt_path={reused}"]
    record["checkpoints"] = {"best": None, "last": None, "evaluated": str(reused)}
    (evaluation / "metrics.json").write_text(json.dumps(record))
    for file in (evaluation / "checkpoints").iterdir():
        file.unlink()
    from ipe_lightning.sweep_files import read_manifest

    variants = finished_variants(sweep_dir, read_manifest(sweep_dir))
    assert [(v.name, v.checkpoint) for v in variants] == [
        ("table4_liif", reused),
        ("table4_ipe_liif_l10", reused),
    ]


SEEDED = [f"{row}_seed-{seed}" for row in ("table4_liif", "table4_ipe_liif_l10") for seed in (0, 1)]
LIIF, L10 = "LIIF (paper: Table 1)", "IPE-LIIF: L = 10 (ours, default)"  # the table's labels


@pytest.fixture(scope="module")
def seeded_sweep(tmp_path_factory, tiny_data_root):
    """Two rows run with seeds [0, 1]; the LIIF row's seed 0 failed."""
    from ipe_lightning.sweep_files import read_manifest

    sweep_dir = tmp_path_factory.mktemp("seeded") / "sweep"
    fake_sweep(sweep_dir, tiny_data_root, SEEDED, failed={"table4_liif_seed-0"})
    return sweep_dir, read_manifest(sweep_dir)


def shown(variants) -> list[tuple[str, str, int | None, int]]:
    return [(v.name, v.label, v.seed, v.seeds) for v in variants]


def test_a_seeded_sweep_shows_one_column_per_row_its_lowest_finished_seed(seeded_sweep):
    variants = finished_variants(*seeded_sweep)
    assert shown(variants) == [
        ("table4_liif_seed-1", LIIF, 1, 2),  # seed 0 failed
        ("table4_ipe_liif_l10_seed-0", L10, 0, 2),
    ]
    assert seeds_shown(variants) == f"seed 0 of 2 ({LIIF}: seed 1 of 2)"  # a tie: the lower


def test_variants_takes_row_names_and_job_names(seeded_sweep):
    by_row = finished_variants(*seeded_sweep, ["table4_ipe_liif_l10"])
    assert shown(by_row) == [("table4_ipe_liif_l10_seed-0", L10, 0, 2)]
    by_job = finished_variants(*seeded_sweep, ["table4_ipe_liif_l10_seed-1"])
    assert shown(by_job) == [("table4_ipe_liif_l10_seed-1", L10, 1, 2)]
    both = finished_variants(*seeded_sweep, [f"table4_ipe_liif_l10_seed-{n}" for n in (1, 0)])
    assert [v.label for v in both] == [f"{L10} (seed 0)", f"{L10} (seed 1)"]
    with pytest.raises(ValueError, match="neither a row nor a job"):
        finished_variants(*seeded_sweep, ["table4_liif_seed-7"])


def test_the_figure_of_a_seeded_sweep_labels_columns_by_row_and_names_the_seed(
    seeded_sweep, tmp_path, capsys, monkeypatch
):
    import ipe_lightning.figure.figure as figure_module

    drawn = []
    save = figure_module.save_figure
    monkeypatch.setattr(
        figure_module, "save_figure", lambda f, stem: drawn.append(f) or save(f, stem)
    )
    sweep_dir, _ = seeded_sweep
    out = ["--out", str(tmp_path / "figure")]
    arguments = [str(sweep_dir), "--scales", "4", "--variants", "table4_ipe_liif_l10", *out]
    assert figure_command(arguments) == 0
    assert "Networks: each job's last.ckpt, seed 0 of 2." in capsys.readouterr().out
    (figure,) = drawn
    labels = [axis.get_xlabel().split("\n")[0] for axis in figure.axes]
    assert labels == ["HR (whole)", "bicubic", "IPE-LIIF: L = 10 (ours,", "HR"]


@pytest.mark.parametrize(
    "old, new",
    [
        ("image=0802", "--image NAME"),
        ("crop=[8,8,16]", "--crop TOP LEFT SIDE"),
        ("scales=[4,30]", "--scales 4 12 30"),
        ("out=/tmp/figure", "--out DIR"),
    ],
)
def test_an_option_spelled_key_value_is_refused_with_its_new_name(old, new, tmp_path, capsys):
    from ipe_lightning.sweep.cli import main

    assert main(["figure", str(tmp_path), old]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert new in error and old.split("=")[0] in error
