"""``python -m ipe_lightning.bench``: lists the benchmarks and refuses unknown ones."""

from __future__ import annotations

from ipe_lightning.bench.__main__ import available, main


def test_dispatcher_lists_benchmarks_and_rejects_unknown_ones(capsys):
    assert "data" in available()
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert main(["no_such_benchmark"]) == 2
    assert "unknown benchmark 'no_such_benchmark'" in capsys.readouterr().err
