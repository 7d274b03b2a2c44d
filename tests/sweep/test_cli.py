"""sweep.py's planning, in-process: overrides per job, W&B group and tags, refusal to overwrite."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from ipe_lightning.results import write_json_atomic
from ipe_lightning.sweep.cli import main
from ipe_lightning.sweep_files import REPO_CONF_DIR, Manifest, write_manifest


def planned_overrides(output: str) -> dict[str, list[str]]:
    """``[sweep] <job>: <overrides>`` lines of a dry run."""
    found = {}
    for line in output.splitlines():
        match = re.match(r"^\[sweep\] (\S+): (.*)$", line)
        if match:
            found[match[1]] = match[2].split(" ")
    return found


def test_every_job_gets_its_name_tags_and_the_sweeps_wandb_group(tmp_path, capsys):
    code = main(
        ["table4", "logger=wandb", "debug=tiny", "--sweep-dir", f"{tmp_path}/s", "--dry-run"],
        conf_dir=REPO_CONF_DIR,
    )
    assert code == 0
    jobs = planned_overrides(capsys.readouterr().out)
    assert list(jobs) == [
        "table4_liif",
        "table4_liif_pe",
        "table4_ipe_liif_l4",
        "table4_ipe_liif_l10",
        "table4_ipe_liif_l16",
        "table4_ipe_liif_cell",
        "table4_ipe_liif_noskip",
    ]
    groups = set()
    for name, overrides in jobs.items():
        assert overrides[0] == f"experiment={name}"
        assert f"run_name={name}" in overrides
        tags = next(o for o in overrides if o.startswith("tags="))
        assert tags.startswith("tags=[table4,edsr_baseline,") and tags.endswith(f",{name}]")
        groups.add(next(o for o in overrides if o.startswith("logger.wandb.group=")))
    (group,) = groups  # one W&B group for the whole sweep: <sweep>_<timestamp>
    assert re.fullmatch(r"logger\.wandb\.group=table4_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", group)
    assert not (tmp_path / "s").exists()  # a dry run writes nothing


def test_a_resumed_sweep_keeps_its_wandb_group_and_the_csv_logger_gets_none(tmp_path, capsys):
    sweep_dir = tmp_path / "s"
    write_manifest(
        sweep_dir,
        Manifest(
            sweep="table4", definition="", title="", created="then", group="table4_then", jobs=[]
        ),
    )
    assert main(["table4", "logger=wandb", "--sweep-dir", f"{sweep_dir}", "--dry-run"]) == 0
    jobs = planned_overrides(capsys.readouterr().out)
    assert all("logger.wandb.group=table4_then" in o for o in jobs.values())
    assert main(["table4", "logger=csv", "--sweep-dir", f"{sweep_dir}", "--dry-run"]) == 0
    jobs = planned_overrides(capsys.readouterr().out)
    assert not any(o.startswith("logger.wandb") for job in jobs.values() for o in job)


def test_a_finished_job_made_with_other_overrides_stops_the_launch(tmp_path, capsys):
    sweep_dir = tmp_path / "s"
    record = {"status": "finished", "overrides": ["experiment=table4_liif", "optim.lr=1"]}
    write_json_atomic(sweep_dir / "table4_liif" / "metrics.json", record)
    before = (sweep_dir / "table4_liif" / "metrics.json").read_text()
    assert main(["table4", "--sweep-dir", f"{sweep_dir}"]) == 2
    captured = capsys.readouterr()
    assert "table4_liif             conflict  finished with other overrides" in captured.out
    assert "never overwritten" in captured.err
    assert (sweep_dir / "table4_liif" / "metrics.json").read_text() == before
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["table4_liif"]  # nothing launched


def test_a_sweep_directory_of_another_sweep_is_refused(tmp_path, capsys):
    write_manifest(
        tmp_path, Manifest(sweep="table1", definition="", title="", created="", group="g", jobs=[])
    )
    assert main(["table4", "--sweep-dir", f"{tmp_path}", "--dry-run"]) == 2
    assert "holds the sweep 'table1'" in capsys.readouterr().err


def test_a_bad_override_fails_before_anything_runs(tmp_path, capsys):
    assert main(["table4", "model=ipe_liff", "--sweep-dir", f"{tmp_path}/s"]) == 2
    assert "ipe_liff" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_report_of_a_sweep_directory_lists_jobs_that_never_started(tmp_path, capsys):
    jobs = [
        {"name": "seed-1", "overrides": ["seed=1"]},
        {"name": "seed-2", "overrides": ["seed=2"]},
    ]
    write_manifest(
        tmp_path,
        Manifest(sweep="mine", definition="", title="mine", created="", group="g", jobs=jobs),
    )
    record = {
        "status": "finished",
        "overrides": ["seed=1"],
        "metrics": {"folder/x2": {"psnr": 31.0, "bicubic_psnr": 30.0}},
    }
    write_json_atomic(tmp_path / "seed-1" / "metrics.json", record)
    assert main(["report", str(tmp_path)]) == 1  # seed-2 did not finish
    assert "1 of 2 jobs finished" in capsys.readouterr().out
    markdown = (tmp_path / "table.md").read_text()
    # seed-1 and seed-2 are one row (a grid of seeds only, ``table.split_seed``), seed-2 missing
    assert "| job — MISSING | 31.00 |" in markdown
    assert "- `seed-2` (job): **missing**: no directory" in markdown
    assert {p.name for p in tmp_path.iterdir()} >= {
        "table.md",
        "table.csv",
        "table.tex",
        "psnr_vs_scale.png",
    }
    assert json.loads((tmp_path / "sweep.json").read_text())["jobs"] == jobs


def test_values_the_override_grammar_would_misread_are_quoted():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from ipe_lightning.sweep.plan import hydra_value, tag_list

    parser = OverridesParser.create()
    for path in ["/data/sweeps/table1", "/my data/it's here"]:
        assert parser.parse_override(f"hydra.sweep.dir={hydra_value(path)}").value() == path
    tags = parser.parse_override(f"tags={tag_list(['table4', 'u1_16', 'my tag', 'table4'])}")
    assert tags.value() == ["table4", "u1_16", "my tag"]


def test_list_prints_every_sweep_with_its_jobs(capsys):
    assert main(["list"], conf_dir=REPO_CONF_DIR) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index(
        "table4 (7 jobs): Table 4: ablation (EDSR-baseline, U(1,4)), DIV2K validation PSNR (dB)"
    )
    assert lines[start + 1 : start + 8] == [
        "  table4_liif",
        "  table4_liif_pe",
        "  table4_ipe_liif_l4",
        "  table4_ipe_liif_l10",
        "  table4_ipe_liif_l16",
        "  table4_ipe_liif_cell",
        "  table4_ipe_liif_noskip",
    ]
    headers = [line.split(" ")[0] for line in lines if not line.startswith(" ")]
    assert headers == ["paper", "table1", "table1_lte", "table1_srno", "table2", "table3", "table4"]
    # paper: the four tables' 36 rows; table1: 6 arbitrary-scale rows, 3 of one model per scale
    # and 2 resampling rows; table1_lte / table1_srno: Table 1's 6 arbitrary-scale rows plus 4
    assert len(lines) == 7 + 36 + 11 + 10 + 10 + 6 + 12 + 7


def test_the_end_of_a_sweep_prints_its_table_for_the_log(tmp_path, capsys):
    """A SLURM log shows the result, not only "all N jobs finished" and the report's files."""
    sweep_file = tmp_path / "mine.yaml"
    sweep_file.write_text("title: mine\nparams:\n  model.net.encoding.bandwidth: 4,6\n")
    arguments = [
        str(sweep_file),
        "--sweep-dir",
        f"{tmp_path}/s",
        f"paths.run_store={tmp_path}/store",
    ]
    assert main([*arguments, "--dry-run"]) == 0
    for name, overrides in planned_overrides(capsys.readouterr().out).items():
        psnr = {"bandwidth-4": 31.0, "bandwidth-6": 31.5}[name]
        record = {
            "status": "finished",
            "overrides": overrides,
            "metrics": {"folder/x2": {"psnr": psnr, "bicubic_psnr": 30.0}},
        }
        write_json_atomic(tmp_path / "s" / name / "metrics.json", record)
    assert main(arguments) == 0  # every job finished: nothing to launch, the report is written
    printed = capsys.readouterr().out
    assert "[sweep] all 2 jobs finished" in printed
    assert "| bandwidth-4 | 31.00 |" in printed and "| bandwidth-6 | **31.50** |" in printed


@pytest.mark.parametrize(
    "old, new",
    [
        ("sweep_dir=/tmp/s", "--sweep-dir DIR"),
        ("seeds=[0,1,2]", "--seeds 0 1 2"),
        ("preflight=false", "--no-preflight"),
    ],
)
def test_an_option_spelled_as_an_override_is_refused_with_its_new_name(old, new, capsys):
    assert main(["table4", "data.root=/data", old, "--dry-run"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert new in error and old.split("=")[0] in error


def test_seeds_end_where_the_overrides_begin(tmp_path, capsys):
    arguments = ["table4", "--seeds", "0", "1", "logger=csv", "--sweep-dir", str(tmp_path / "s")]
    assert main([*arguments, "--dry-run"]) == 0
    jobs = planned_overrides(capsys.readouterr().out)
    assert list(jobs)[:2] == ["table4_liif_seed-0", "table4_liif_seed-1"] and len(jobs) == 14
    assert all("logger=csv" in overrides for overrides in jobs.values())


def test_the_dry_run_prints_the_plan(tmp_path, capsys):
    from ipe_lightning.sweep.definitions import load_sweep
    from ipe_lightning.sweep.launch import hydra_session
    from ipe_lightning.sweep.plan import make_plan

    overrides = ["logger=csv", "debug=tiny"]
    sweep_dir = str(tmp_path / "s")
    assert main(["table4", *overrides, "--sweep-dir", sweep_dir, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    with hydra_session(REPO_CONF_DIR) as hydra:
        plan = make_plan(hydra, load_sweep("table4"), overrides, sweep_dir)
    assert printed == f"{plan}\n"
    assert printed.splitlines()[-1] == "[sweep] 7 to train, 0 to evaluate only, 0 finished"
    assert plan.store.root == tmp_path / "runs"  # beside the sweep, not in the working directory
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.steps = ()


def test_help_and_usage_errors_exit_as_before(capsys):
    assert main(["--help"]) == 0
    assert main([]) == 2
    assert main(["table4", "--no-such-option"]) == 2
    assert main(["report", "--no-such-option"]) == 2
