"""Train once, evaluate everywhere (real sweeps on the tiny tree): the paper's 34 trained rows and
Table 1's 2 resampling rows are 29 trainings, and a model two tables list is trained once."""

from __future__ import annotations

import re

import pytest

from ipe_lightning.sweep.cli import main
from tests.support.runs import read_record
from tests.sweep.support import run_sweep, write_sweep_file

pytestmark = pytest.mark.slow

SHARED = {  # the row that evaluates -> the Table 1 row whose training it is
    "table2_rdn_metasr": "table1_rdn_metasr",
    "table2_rdn_liif": "table1_rdn_liif",
    "table2_rdn_ipe_liif": "table1_rdn_ipe_liif",
    "table4_liif": "table1_edsr_baseline_liif",
    "table4_ipe_liif_l10": "table1_edsr_baseline_ipe_liif",
    "table1_edsr_baseline_x4_bicubic": "table1_edsr_baseline_x4",
    "table1_edsr_baseline_x4_lanczos": "table1_edsr_baseline_x4",
}


def steps(output: str) -> dict[str, str]:
    """``job -> step`` from the plan lines (``[sweep]   <job>  <action>  <reason>  [<step>]``)."""
    found = {}
    for line in output.splitlines():
        match = re.match(r"^\[sweep\]   (\S+) .*  \[(\S+)\]$", line)
        if match:
            found[match[1]] = match[2]
    return found


def test_the_paper_sweep_plans_29_trainings_and_7_evaluations(tiny_data_root, tmp_path, capsys):
    arguments = [
        "paper",
        "debug=tiny",
        f"data.root={tiny_data_root}",
        "--sweep-dir",
        f"{tmp_path / 'paper'}",
        f"paths.run_store={tmp_path / 'store'}",
        "--dry-run",
    ]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    planned = steps(out)
    assert len(planned) == 36
    assert sum(step == "train" for step in planned.values()) == 29
    assert {job for job, step in planned.items() if step == "reuse+evaluate"} == set(SHARED)
    for job, source in SHARED.items():
        line = next(line for line in out.splitlines() if line.startswith(f"[sweep]   {job} "))
        assert f"evaluates {source}'s training" in line
        assert f"ckpt_path={tmp_path / 'paper' / source}/checkpoints/last.ckpt" in out
    assert "[sweep] 29 to train, 7 to evaluate only, 0 finished" in out.splitlines()
    assert not (tmp_path / "paper").exists() and not (tmp_path / "store").exists()


def test_a_model_two_tables_list_is_trained_once(tiny_data_root, decoded_cache, tmp_path):
    common = [
        "debug=tiny",
        f"data.root={tiny_data_root}",
        f"data.cache_dir={decoded_cache}",
        "data.num_workers=0",
        "eval.scales=[2]",
        f"paths.run_store={tmp_path / 'store'}",
    ]
    two_tables = write_sweep_file(
        tmp_path / "two_tables.yaml",
        "params:\n  experiment: table1_edsr_baseline_liif,table4_liif\n",
    )
    first = run_sweep([str(two_tables), *common, "--sweep-dir", f"{tmp_path / 'a'}"], cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert steps(first.stdout) == {
        "table1_edsr_baseline_liif": "train",
        "table4_liif": "reuse+evaluate",
    }
    trained = read_record(tmp_path / "a" / "table1_edsr_baseline_liif")
    evaluated = read_record(tmp_path / "a" / "table4_liif")
    assert (trained["mode"], evaluated["mode"]) == ("train", "test")  # one training, in all
    assert trained["status"] == evaluated["status"] == "finished"
    assert set(evaluated["metrics"]) == set(trained["metrics"]) == {"div2k/x2"}
    assert evaluated["metrics"] == trained["metrics"]  # the same weights, the same images
    assert not (tmp_path / "a" / "table4_liif" / "checkpoints").exists()

    # Another sweep (another table) that lists the model evaluates the stored training.
    table4 = write_sweep_file(tmp_path / "table4_liif.yaml", "params:\n  experiment: table4_liif\n")
    second = run_sweep([str(table4), *common, "--sweep-dir", f"{tmp_path / 'b'}"], cwd=tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert steps(second.stdout) == {"job": "reuse+evaluate"}  # a grid of one: its job is "job"
    assert "0 to train, 1 to evaluate only, 0 finished" in second.stdout
    assert read_record(tmp_path / "b" / "job")["mode"] == "test"

    # A scale added to the finished sweep: evaluated, merged, never trained again.
    checkpoint = tmp_path / "a" / "table1_edsr_baseline_liif" / "checkpoints" / "last.ckpt"
    trained_bytes = checkpoint.read_bytes()
    more = [o if o != "eval.scales=[2]" else "eval.scales=[2,3]" for o in common]
    third = run_sweep([str(two_tables), *more, "--sweep-dir", f"{tmp_path / 'a'}"], cwd=tmp_path)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert steps(third.stdout) == {
        "table1_edsr_baseline_liif": "reuse+evaluate",
        "table4_liif": "reuse+evaluate",
    }
    assert "0 to train, 2 to evaluate only, 0 finished" in third.stdout
    assert "evaluates div2k x3" in third.stdout
    assert checkpoint.read_bytes() == trained_bytes
    for job, before in (("table1_edsr_baseline_liif", trained), ("table4_liif", evaluated)):
        record = read_record(tmp_path / "a" / job)
        assert set(record["metrics"]) == {"div2k/x2", "div2k/x3"}
        assert record["metrics"]["div2k/x2"] == before["metrics"]["div2k/x2"]
        assert record["mode"] == before["mode"] and "eval.scales=[2,3]" in record["overrides"]
        assert set(read_record(tmp_path / "a" / job / "evaluation")["metrics"]) == {"div2k/x3"}
    fourth = run_sweep(
        [str(two_tables), *more, "--sweep-dir", f"{tmp_path / 'a'}", "--dry-run"], cwd=tmp_path
    )
    assert "0 to train, 0 to evaluate only, 2 finished" in fourth.stdout
