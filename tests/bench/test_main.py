"""``python -m ipe_lightning.bench``: lists the benchmarks and refuses unknown ones."""

from __future__ import annotations

from ipe_lightning.bench.__main__ import available, main


def test_dispatcher_lists_benchmarks_and_rejects_unknown_ones(capsys):
    assert available() == [
        "data",
        "decode",
        "degrade",
        "memory",
        "train",
    ]  # roofline is decode's helper
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert main(["no_such_benchmark"]) == 2
    assert "unknown benchmark 'no_such_benchmark'" in capsys.readouterr().err


def test_every_listed_benchmark_runs_its_help(capsys):
    """Each name the usage line offers is a runnable benchmark (``roofline`` once was listed and
    failed with an AttributeError)."""
    for name in available():
        try:
            code = main([name, "--help"])
        except SystemExit as exit_:  # argparse's --help
            code = exit_.code
        assert code == 0, name
        assert "usage" in capsys.readouterr().out.lower(), name
