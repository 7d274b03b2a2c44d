"""The report tool: a sweep's results as the paper's tables and the PSNR-gain plot.

It reads only result files (``sweep.json``, ``metrics.json``, ``per_image.csv``, through
:mod:`ipe_lightning.sweep_files` and :mod:`ipe_lightning.results`) or W&B runs, and imports
neither Hydra, OmegaConf, Lightning nor torch: a notebook or a laptop without GPU stack can report
on a sweep that ran elsewhere (``sweep.py report``).
"""
