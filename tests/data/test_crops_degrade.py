"""data.degrade=matlab makes the training LR with MATLAB's resize; pillow stays the default."""

from __future__ import annotations

import numpy as np
import torch
from hydra.utils import instantiate

from ipe_lightning.data.crops import training_sample
from ipe_lightning.data.matlab_resize import imresize_matlab_uint8
from tests.support.runs import compose_config


def test_a_matlab_training_sample_is_imresize_of_its_crop(make, rng):
    hr = make.random_rgb(rng, 64, 64)
    options = {"inp_size": 12, "scale_min": 3, "scale_max": 3, "sample_q": None, "augment": False}
    matlab = training_sample(hr, np.random.default_rng(5), degrade="matlab", **options)
    pillow = training_sample(hr, np.random.default_rng(5), **options)
    # the same draws: the same crop (36 x 36 at scale 3) and queries, only the LR differs
    torch.testing.assert_close(matlab["gt"], pillow["gt"])
    side = 36
    crop = (matlab["gt"].reshape(side, side, 3) * 255).round().to(torch.uint8).permute(2, 0, 1)
    expected = imresize_matlab_uint8(crop, size=(12, 12)).float() / 255
    torch.testing.assert_close(matlab["lr"], expected, rtol=0, atol=0)
    assert not torch.equal(matlab["lr"], pillow["lr"])


def test_data_degrade_reaches_the_training_crops_and_the_eval_sets():
    cfg = compose_config(["data.degrade=matlab", "eval=paper"])
    assert {spec.degrade for spec in cfg.eval.sets.values()} == {"matlab"}
    assert instantiate(cfg.data).degrade == "matlab"
    assert instantiate(compose_config([]).data).degrade == "pillow"
