"""run.py: an error in what was asked is one message and exit status 2, without a traceback
(``HYDRA_FULL_ERROR=1`` still shows it); a config that does not compose exits 2 too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.runs import run_script


def test_missing_data_is_one_message_and_exit_2(tmp_path):
    done = run_script("run.py", ["experiment=table4_liif", "data.root=/does/not/exist"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert "run.py: data.root not found: looked for the folder /does/not/exist" in done.stderr
    console = done.stdout + done.stderr
    assert "Traceback" not in console
    assert console.count("data.root not found") == 1, console  # told once on the console
    assert "job failed: DatasetNotFoundError" in (tmp_path / "run.log").read_text()


@pytest.mark.slow  # a few seconds of subprocesses; runs in make test-slow and CI
def test_hydra_full_error_still_shows_the_traceback(tmp_path):
    done = run_script(
        "run.py",
        ["experiment=table4_liif", "data.root=/does/not/exist"],
        tmp_path,
        env={"HYDRA_FULL_ERROR": "1"},
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "DatasetNotFoundError" in done.stderr


@pytest.mark.parametrize(
    ("override", "named"),
    [("no_such_option=1", "no_such_option"), ("model=no_such_model", "no_such_model")],
)
def test_a_config_that_does_not_compose_exits_2(tmp_path, override, named):
    done = run_script("run.py", [override], tmp_path)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow  # a few seconds of subprocesses; runs in make test-slow and CI
def test_a_missing_checkpoint_exits_2_naming_it(tmp_path):
    done = run_script("run.py", ["mode=test", f"ckpt_path={tmp_path}/none.ckpt"], tmp_path / "r")
    assert done.returncode == 2, done.stderr
    assert "none.ckpt" in done.stderr and "Traceback" not in done.stderr


# -- one message and exit 2 for every user error ------------------------------------------------


def told(error: BaseException) -> str | None:
    """What run.py prints alone for ``error`` (None: a bug, with its traceback)."""
    from ipe_lightning.errors import user_message

    return user_message(error)


def raised(call) -> BaseException:
    try:
        call()
    except Exception as error:
        return error
    raise AssertionError("nothing raised")


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's read-only /sys")
def test_a_log_file_the_machine_refuses_is_told_by_its_cause():
    import logging.config

    handler = {"class": "logging.FileHandler", "filename": "/sys/run.log"}
    config = {"version": 1, "handlers": {"file": handler}, "incremental": False}
    error = raised(lambda: logging.config.dictConfig(config))
    assert "Unable to configure handler 'file'" in str(error)  # what Hydra would print
    assert told(error) == "Permission denied: /sys/run.log"


def test_a_refused_write_or_a_full_disk_is_told_without_its_wrapper():
    import errno

    from ipe_lightning.errors import describe

    def wrapped(cause: OSError):
        try:
            raise cause
        except OSError:
            # as torch's archive writer does: the OSError only as the context
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")  # noqa: B904

    full = raised(lambda: wrapped(OSError(errno.ENOSPC, "No space left on device")))
    assert told(full) == "No space left on device"
    assert describe(full) == "OSError: [Errno 28] No space left on device"
    assert told(raised(lambda: wrapped(OSError(errno.EIO, "Input/output error")))) is None


def test_a_config_that_does_not_compose_is_told_as_hydra_tells_it():
    from hydra.errors import ConfigCompositionException
    from omegaconf.errors import ConfigKeyError

    from ipe_lightning.errors import config_message

    try:
        raise ConfigCompositionException("Could not override 'x'.") from ConfigKeyError("Key 'x'")
    except ConfigCompositionException as error:
        assert config_message(error) == "Could not override 'x'.\nKey 'x'"
    assert config_message(ValueError("a bug")) is None


def test_a_corrupt_image_a_paired_lr_of_the_wrong_size_and_a_scale_too_large_are_user_errors(
    tmp_path,
):
    import numpy as np
    from PIL import Image

    from ipe_lightning.data.eval_sets import (
        EvalPair,
        EvalSetSpec,
        build_eval_datasets,
        check_paired_size,
    )
    from ipe_lightning.data.images import decode_rgb, readable_images
    from ipe_lightning.data.sources import ImageFolders

    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path / "small.png")
    (tmp_path / "broken.png").write_bytes((tmp_path / "small.png").read_bytes()[:40])
    corrupt = raised(lambda: readable_images([tmp_path / "broken.png"], skip_bad=False, what="x"))
    assert "broken.png" in told(corrupt) and "data.skip_bad=true" in told(corrupt)
    pair = EvalPair("a", tmp_path / "a.png", tmp_path / "a_x2.png")
    wrong = raised(lambda: check_paired_size(pair, (96, 96), (20, 20), 2))
    assert "is 20x20" in told(wrong) and "expected 48x48" in told(wrong)
    (tmp_path / "broken.png").unlink()
    spec = EvalSetSpec.from_config(
        "mine", {"images": ImageFolders(test_dir=tmp_path), "scales": [16]}
    )
    large = raised(lambda: build_eval_datasets(spec, decode_rgb))
    assert "too small for scale x16" in told(large)


@pytest.mark.slow  # builds a network and estimates its memory (a few seconds)
def test_a_predict_size_too_large_for_the_memory_is_refused_naming_predict_size(tmp_path):
    import numpy as np
    import torch
    from hydra.utils import instantiate
    from PIL import Image

    from ipe_lightning.configs import plain
    from ipe_lightning.tasks import predict
    from tests.support.runs import compose_config

    net_config = plain(compose_config(["model=liif"]).model.net)
    state = {f"net.{k}": v for k, v in instantiate(net_config).state_dict().items()}
    hyper = {"net": net_config, "model_name": "liif"}
    torch.save({"state_dict": state, "hyper_parameters": hyper}, tmp_path / "liif.ckpt")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "in.png")
    overrides = ["mode=predict", f"ckpt_path={tmp_path / 'liif.ckpt'}", "predict.device=cpu"]
    overrides += [f"predict.input={tmp_path / 'in.png'}", "predict.size=[200000,200000]"]
    error = raised(lambda: predict(compose_config(overrides, tmp_path)))
    assert "predict.size=[200000,200000]" in told(error)
    assert not (tmp_path / "predictions").exists() or not any((tmp_path / "predictions").iterdir())


@pytest.mark.slow  # a subprocess (~6 s)
def test_a_value_out_of_range_is_one_line_and_exit_2(tmp_path):
    done = run_script("run.py", ["eval.scales=[2,3,[2]]", "debug=smoke"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "run.py: eval set 'sample': eval.scales=[2, 3, [2]]: [2] is not a scale; a non-empty list "
        "of scales, each a finite number >= 1 or a pair [s_h, s_w] of them "
        "(eval.scales=[2,3.5,[2,3]])"
    ]


@pytest.mark.slow  # a subprocess (~4 s)
@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's read-only /sys")
def test_a_run_directory_the_machine_refuses_is_one_line_naming_the_log_file():
    done = run_script("run.py", ["debug=smoke"], Path("/sys"))  # exists, not writable
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == ["run.py: Permission denied: /sys/run.log"]
