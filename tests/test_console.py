"""One plain console for run.py and for a sweep's jobs (conf/config.yaml, hydra.job_logging):
our messages bare, other libraries' only from WARNING up, everything stamped in the job's log
file; and run.py --help that says which groups are sweep.py's."""

from __future__ import annotations

import logging
import logging.config

import pytest
from omegaconf import OmegaConf

from tests.support.runs import CONF_DIR, compose_config

WATCHED = ("", "pytorch_lightning", "lightning_fabric", "ipe_lightning")


@pytest.fixture
def restored_logging():
    """The watched loggers' handlers, levels and propagation put back after the test."""
    saved = {}
    for name in WATCHED:
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), logger.level, logger.propagate, logger.disabled)
    yield
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


def configure_job_logging(log_file) -> None:
    """What Hydra does when a job starts (run.py or a sweep's job): the job_logging node."""
    spec = OmegaConf.to_container(compose_config([]).hydra.job_logging, resolve=False)
    for handler in spec["handlers"].values():
        if "filename" in handler:
            handler["filename"] = str(log_file)
    logging.config.dictConfig(spec)


def test_the_console_shows_our_lines_and_warnings_bare_and_the_log_file_everything(
    tmp_path, capsys, restored_logging
):
    # Lightning imported before logging is configured (sweep.py) keeps a handler of its own.
    lightning = logging.getLogger("pytorch_lightning")
    lightning.addHandler(logging.StreamHandler())
    lightning.propagate = False
    configure_job_logging(tmp_path / "run.log")

    logging.getLogger("pytorch_lightning.utilities.rank_zero").info("💡 Tip: try litlogger")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").info("GPU available: False")
    logging.getLogger("lightning_fabric.utilities.seed").info("Seed set to 0")
    logging.getLogger("pytorch_lightning.trainer").warning("a warning the reader needs")
    logging.getLogger("ipe_lightning.runtime.progress").info("[train] step 1/2")

    captured = capsys.readouterr()
    assert captured.out == "a warning the reader needs\n[train] step 1/2\n"
    assert captured.err == ""
    logged = (tmp_path / "run.log").read_text().splitlines()
    assert len(logged) == 5 and all(line.startswith("[") for line in logged)
    assert "Tip" in logged[0] and "[INFO]" in logged[0]


def test_run_help_says_which_groups_are_sweep_pys():
    from hydra import compose, initialize_config_dir
    from hydra._internal.utils import get_args_parser
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", return_hydra_config=True)
        hydra = GlobalHydra.instance().hydra
        text = hydra.get_help(cfg.hydra.help, cfg, get_args_parser(), resolve=False)
    groups = text.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert any(line.startswith("sweep: ") for line in groups.splitlines())
    assert "`sweep` holds sweep.py's sweeps" in groups
    assert "python sweep.py list" in groups


@pytest.mark.slow
def test_the_readme_pre_check_runs_on_the_cpu_on_the_tiny_tree_and_reads_cleanly(tmp_path):
    """`run.py experiment=<paper row> debug=smoke` with nothing else: this machine, these images
    (96 px), a console of our lines only, and one checkpoint left on disk."""
    from ipe_lightning.data.tiny_tree import write_tiny_datasets
    from tests.support.runs import run_script

    root = write_tiny_datasets(tmp_path / "data")
    run_dir = tmp_path / "run"
    overrides = [
        "experiment=table1_edsr_baseline_ipe_liif",
        "debug=smoke",
        f"data.root={root}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "eval.scales=[2,30]",
    ]
    done = run_script("run.py", overrides, run_dir, env={"CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    console = done.stdout + done.stderr
    for noise in ("Tip", "GPU available", "was configured so", "Seed set", "[20"):
        assert noise not in console, noise
    assert "table1_edsr_baseline_ipe_liif: test results" in done.stdout
    kept = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert kept == ["best.ckpt", "last.ckpt"]  # no last.prev.ckpt once trained
    assert "GPU available" in (run_dir / "run.log").read_text()  # the details are kept there
