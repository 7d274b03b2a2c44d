"""The sweep tool: the paper's tables as grids of jobs (``conf/sweep/``), planned against what the
sweep directory already holds (resume, train once), launched through Hydra's launchers, and
reported on at the end (``sweep.py``)."""
