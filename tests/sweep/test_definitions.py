"""Sweep files: the paper sweeps list every trained row; user grids expand and name their jobs."""

from __future__ import annotations

import pytest

from ipe_lightning.sweep.definitions import expand_grid, load_sweep
from ipe_lightning.sweep_files import REPO_CONF_DIR, SweepDefinitionError, available_sweeps

PAPER_SWEEPS = {"table1": 11, "table2": 6, "table3": 12, "table4": 7}
# Table 1's rows of one model per scale and its resampling rows (the x4 model resized)
FIXED_SCALE_ROWS = {
    "table1_edsr_baseline_x2",
    "table1_edsr_baseline_x3",
    "table1_edsr_baseline_x4",
    "table1_edsr_baseline_x4_bicubic",
    "table1_edsr_baseline_x4_lanczos",
}


@pytest.mark.parametrize("name, count", PAPER_SWEEPS.items())
def test_paper_sweeps_run_one_experiment_preset_per_trained_row(name, count):
    definition = load_sweep(name)
    jobs = definition.jobs()
    assert len(jobs) == count
    for job in jobs:
        assert job.overrides == (f"experiment={job.name}",)
        assert (REPO_CONF_DIR / "experiment" / f"{job.name}.yaml").is_file()
        assert job.name.startswith(name + "_")
    assert list(definition.layout.variants) == [job.name for job in jobs]  # paper row order


def test_the_four_sweeps_cover_every_table_experiment():
    experiments = {p.stem for p in (REPO_CONF_DIR / "experiment").glob("table*.yaml")}
    beyond = {name for name in experiments if name.endswith(("_lte", "_srno", "_srno_recipe"))}
    swept = {job.name for name in PAPER_SWEEPS for job in load_sweep(name).jobs()}
    assert swept == experiments - beyond and len(swept) == 36
    assert set(PAPER_SWEEPS) <= set(available_sweeps())


def test_the_lte_sweep_is_table1_plus_lte_and_ipe_lte_in_the_same_layout():
    table1, extended = load_sweep("table1"), load_sweep("table1_lte")
    table1_rows = {job.name for job in table1.jobs()} - FIXED_SCALE_ROWS
    extra = [job.name for job in extended.jobs() if job.name not in table1_rows]
    assert table1_rows < {job.name for job in extended.jobs()}
    assert sorted(extra) == sorted(
        f"table1_{encoder}_{model}"
        for encoder in ("edsr_baseline", "rdn")
        for model in ("lte", "ipe_lte")
    )
    assert extended.layout.columns == table1.layout.columns
    assert extended.layout.metric == table1.layout.metric == "psnr_ssim"
    lte_rows = [row for row in extended.layout.rows if row.variant in extra]
    assert lte_rows and all(row.paper is None for row in lte_rows)  # no paper number to show


def test_a_grid_of_overrides_makes_every_combination_named_by_what_varies():
    jobs = expand_grid({"model": "liif,ipe_liif", "model.net.bandwidth": "4,16", "seed": "0"})
    assert [job.name for job in jobs] == [
        "model-liif_bandwidth-4",
        "model-liif_bandwidth-16",
        "model-ipe_liif_bandwidth-4",
        "model-ipe_liif_bandwidth-16",
    ]
    assert jobs[1].overrides == ("model=liif", "model.net.bandwidth=16", "seed=0")


def test_hydra_sweep_syntax_works_in_params():
    jobs = expand_grid({"model.net.bandwidth": "range(4,13,4)"})
    assert [job.name for job in jobs] == ["bandwidth-4", "bandwidth-8", "bandwidth-12"]


def test_names_fall_back_to_full_keys_when_leaves_collide():
    jobs = expand_grid({"data.scale_max": "4,8", "eval.scale_max": "1,2"})
    assert jobs[0].name == "data.scale_max-4_eval.scale_max-1"


def test_a_users_sweep_file_is_found_by_path(tmp_path):
    path = tmp_path / "bandwidths.yaml"
    path.write_text(
        "params:\n  experiment: table4_ipe_liif_l10\n  model.net.bandwidth: [6, 8]\n"
        "overrides: [trainer.max_epochs=10]\n"
        "debug_overrides:\n  tiny: [data.inp_size=8]\n"
    )
    definition = load_sweep(str(path))
    assert definition.name == "bandwidths" and definition.layout is None
    assert [job.name for job in definition.jobs()] == ["bandwidth-6", "bandwidth-8"]
    assert definition.extra_overrides(["data.root=/x"]) == ("trainer.max_epochs=10",)
    assert definition.extra_overrides(["debug=tiny"]) == (
        "trainer.max_epochs=10",
        "data.inp_size=8",
    )
    assert definition.extra_overrides(["debug=smoke"]) == ("trainer.max_epochs=10",)


def test_an_unknown_sweep_names_the_known_ones():
    with pytest.raises(
        SweepDefinitionError, match="table1, table1_lte, table1_srno, table2, table3, table4"
    ):
        load_sweep("table5")


def test_table_rows_must_name_jobs_of_the_grid(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "params: {seed: '1,2'}\n"
        "table: {columns: [{set: div2k, scales: [2]}], rows: [{variant: seed-3}]}\n"
    )
    with pytest.raises(SweepDefinitionError, match="seed-3"):
        load_sweep(str(path))
