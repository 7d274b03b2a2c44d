"""The published numbers: the paper's (``paper_tables.csv``) and those of later methods the suite
compares with (``srno_published.csv``: SRNO's, as table ``srno``), package data; and the lookup
of one cell.

One CSV line per published cell: ``table, dataset, encoder, method, variant, train_scales,
scale, psnr, ssim`` (``ssim`` empty where the paper gives PSNR only). A table row names its paper
row by some of ``table, encoder, method, variant, train_scales``; the column gives the rest.
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

PUBLISHED = ("paper_tables.csv", "srno_published.csv")


def load_paper_numbers(path: str | None = None) -> list[dict[str, str]]:
    """The published numbers, one dict per table cell (the files of :data:`PUBLISHED`, shipped
    as package data; a ``path`` reads another file of the same columns). Columns beyond those
    above (a ``source``) are kept and unused."""
    if path is not None:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    resources = importlib.resources.files("ipe_lightning") / "resources"
    rows: list[dict[str, str]] = []
    for name in PUBLISHED:
        rows += csv.DictReader(io.StringIO((resources / name).read_text()))
    return rows


def paper_cell(
    paper_rows: Iterable[Mapping[str, str]],
    key: Mapping[str, str],
    dataset: str,
    scale: Any,
    metrics: Sequence[str],
) -> dict[str, float]:
    """The paper's values for the row ``key`` at (``dataset``, ``scale``); ``{}`` if it has none.

    Raises ``ValueError`` when ``key`` matches several paper rows (an ambiguous table spec).
    """
    if isinstance(scale, list | tuple):
        return {}  # the paper reports uniform scales only
    matches = [
        row
        for row in paper_rows
        if row["dataset"] == dataset
        and math.isclose(float(row["scale"]), float(scale))
        and all(row.get(name, "") == str(value) for name, value in key.items())
    ]
    if len(matches) > 1:
        raise ValueError(f"paper row {dict(key)} is ambiguous at {dataset} x{scale}: {matches}")
    if not matches:
        return {}
    return {m: float(matches[0][m]) for m in metrics if matches[0].get(m) not in (None, "")}
