"""Table 1's fixed-scale and resampling rows end to end (a real sweep on the tiny tree): the x4
network trains once on paired crops, its row has the x4 cell only, and its resampling row
evaluates the same training at every scale of the table."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.support.runs import read_record
from tests.sweep.support import REPO, run_sweep, write_sweep_file

pytestmark = pytest.mark.slow

X4, RESAMPLED = "table1_edsr_baseline_x4", "table1_edsr_baseline_x4_bicubic"


def reduced_table1(path):
    """conf/sweep/table1.yaml with only the x4 row and its bicubic resampling (and Bicubic)."""
    spec = yaml.safe_load((REPO / "conf" / "sweep" / "table1.yaml").read_text())
    spec["params"] = {"experiment": f"{X4},{RESAMPLED}"}
    table = spec["table"]
    table["rows"] = [r for r in table["rows"] if r.get("variant") in (X4, RESAMPLED, None)]
    table["rows"] = [r for r in table["rows"] if r.get("kind") != "paper"]
    table.pop("reference")
    return write_sweep_file(path, yaml.safe_dump(spec, allow_unicode=True))


def cells(markdown: str, label: str) -> list[str]:
    (line,) = [line for line in markdown.splitlines() if line.startswith(f"| {label} |")]
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_the_x4_row_trains_once_and_its_resampling_row_evaluates_it_at_every_scale(
    tiny_data_root, decoded_cache, tmp_path
):
    sweep_dir = tmp_path / "sweep"
    result = run_sweep(
        [
            str(reduced_table1(tmp_path / "table1_x4.yaml")),
            "debug=tiny",
            "trainer.max_epochs=1",
            f"data.root={tiny_data_root}",
            f"data.cache_dir={decoded_cache}",
            f"paths.run_store={tmp_path / 'store'}",
            "--sweep-dir",
            str(sweep_dir),
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    steps = dict(re.findall(r"^\[sweep\]   (\S+) .*  \[(\S+)\]$", result.stdout, re.MULTILINE))
    assert steps == {X4: "train", RESAMPLED: "reuse+evaluate"}
    trained, resampled = read_record(sweep_dir / X4), read_record(sweep_dir / RESAMPLED)
    assert (trained["mode"], resampled["mode"]) == ("train", "test")
    assert set(trained["metrics"]) == {"div2k/x4"}
    scales = [2, 3, 4, 6, 12, 18, 24, 30]
    assert set(resampled["metrics"]) == {f"div2k/x{s}" for s in scales}
    # at its own scale the resampler has nothing to do: the network's own numbers
    assert resampled["metrics"]["div2k/x4"]["psnr"] == pytest.approx(
        trained["metrics"]["div2k/x4"]["psnr"], abs=1e-4
    )

    markdown = (sweep_dir / "table.md").read_text()
    own = cells(markdown, "EDSR-baseline ×4 (one model per scale)")
    assert len(own) == len(scales)
    assert "(28.94 / 0.8962, Δ" in own[2]  # the paper's x4 number beside ours
    assert [cell for i, cell in enumerate(own) if i != 2] == ["–"] * (len(scales) - 1)
    resampled_cells = cells(markdown, "EDSR-baseline ×4 + bicubic")
    assert all(re.search(r"\d+\.\d\d", cell) and "(" not in cell for cell in resampled_cells)
