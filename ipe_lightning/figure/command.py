"""``sweep.py figure``: the figure of a sweep directory (:mod:`ipe_lightning.figure.figure`).

python sweep.py figure <sweep_dir> [--image NAME] [--crop TOP LEFT SIDE] [--scales 4 12 30]
                                   [--set NAME] [--variants ROW ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ipe_lightning.figure.figure import FigureError, make_figure, parse_crop

# The options' spellings as ``key=value`` before they were ``--options``: refused, named.
RENAMED = {
    "image": "--image NAME",
    "crop": "--crop TOP LEFT SIDE",
    "scales": "--scales 4 12 30",
    "set": "--set NAME",
    "variants": "--variants ROW ...",
    "out": "--out DIR",
}


def figure_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweep.py figure",
        description="The paper's qualitative comparison from a sweep's finished jobs.",
    )
    parser.add_argument("sweep_dir", help="a directory made by `sweep.py <sweep>`")
    parser.add_argument("--image", help="the image of the set (default: its first)")
    parser.add_argument(
        "--crop",
        nargs="+",
        type=int,
        metavar="N",
        help="TOP LEFT SIDE (or TOP LEFT HEIGHT WIDTH) in HR pixels (default: where the "
        "variants differ most)",
    )
    parser.add_argument("--scales", nargs="+", type=float, help="one row per scale")
    parser.add_argument("--set", dest="set_name", help="the evaluation set (default: the first)")
    parser.add_argument("--variants", nargs="+", help="table rows or jobs (default: every row)")
    parser.add_argument("--out", help="where to write the figure (default: the sweep directory)")
    return parser


def figure_command(arguments: Sequence[str], conf_dir: Path | None = None) -> int:
    """``sweep.py figure <sweep_dir> [--options]`` (module doc); exit status 0, or 2."""
    parser = figure_parser()
    for argument in arguments:
        key = argument.split("=", 1)[0]
        if "=" in argument and key in RENAMED:
            parser.error(f"{key}= is now an option: {RENAMED[key]}")
    options = vars(parser.parse_args(arguments))
    sweep_dir = options.pop("sweep_dir")
    try:
        if options["crop"] is not None:
            options["crop"] = parse_crop(options["crop"])
        paths, caption = make_figure(sweep_dir, conf_dir=conf_dir, **options)
    except (FigureError, ValueError) as error:
        print(f"sweep.py figure: {error}", file=sys.stderr)
        return 2
    print(f"[figure] {caption}")
    print(f"[figure] {', '.join(str(p) for p in paths)}")
    return 0
