"""Sweeps over the paper's tables: definitions (``conf/sweep/``), launching through Hydra's
launchers, resume, and reports in the paper's layout (``sweep.py``)."""
