"""SRNO's schedule gives, epoch by epoch, the learning rates of the SRNO code's training loop.

Oracle: that loop's rates computed from its description (its ``train.py`` and ``scheduler.py``,
with torch's own ``CosineAnnealingLR`` for the cosine part): the warm-up rate of epoch ``n``
(1-based) is ``base (1 + (m - 1)(n - 1) / T)``; when epoch ``T + 1`` ends the warm-up hands over
to a cosine scheduler whose base is ``base · m`` and which starts at the rate in place, and after
every later epoch ``n`` that scheduler is stepped to its epoch ``n - T`` (torch's closed form).
"""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ipe_lightning.schedules import WarmupCosine, warmup_cosine_factor

PRESET = Path(__file__).resolve().parents[1] / "conf" / "schedule" / "srno.yaml"
BASE, MULTIPLIER, WARMUP, EPOCHS = 4e-5, 10, 50, 1050  # SRNO: configs/train_edsr-sronet.yaml


def srno_loop_rates(base: float, m: float, warmup: int, epochs: int) -> list[float]:
    """The rate of each epoch ``1..epochs`` of the SRNO code's loop (module docstring)."""
    rates = [base * (1 + (m - 1) * (n - 1) / warmup) for n in range(1, warmup + 2)]
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=base * m)  # the rate in place at the handover
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs - warmup)
    rates.append(optimizer.param_groups[0]["lr"])  # epoch T + 2: the cosine at its epoch 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # step(epoch) is deprecated, and what the SRNO code calls
        for n in range(warmup + 2, epochs):
            optimizer.step()
            cosine.step(n - warmup)
            rates.append(optimizer.param_groups[0]["lr"])
    return rates


def rates_of(scheduler: WarmupCosine, optimizer: torch.optim.Optimizer, epochs: int) -> list[float]:
    """The rate of each epoch as SRModule's trainer uses it: read, train, step once per epoch."""
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def adam(lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr)


@pytest.mark.parametrize(
    ("base", "m", "warmup", "epochs"), [(BASE, MULTIPLIER, WARMUP, EPOCHS), (1e-3, 4, 3, 12)]
)
def test_warmup_cosine_gives_the_srno_loops_rate_every_epoch(base, m, warmup, epochs):
    optimizer = adam(base)
    ours = rates_of(WarmupCosine(optimizer, m, warmup, epochs), optimizer, epochs)
    expected = srno_loop_rates(base, m, warmup, epochs)
    assert len(ours) == len(expected) == epochs
    assert ours == pytest.approx(expected, rel=1e-12, abs=0)


def test_srno_schedule_rises_tenfold_holds_the_peak_then_falls_towards_zero():
    rates = [BASE * warmup_cosine_factor(e, MULTIPLIER, WARMUP, EPOCHS) for e in range(EPOCHS)]
    assert rates[0] == BASE
    assert rates[WARMUP] == rates[WARMUP + 1] == pytest.approx(10 * BASE)
    assert max(rates) == pytest.approx(10 * BASE)
    assert all(a < b for a, b in itertools.pairwise(rates[: WARMUP + 1]))
    assert all(a > b for a, b in itertools.pairwise(rates[WARMUP + 1 :]))
    last = 10 * BASE * (1 + math.cos(math.pi * (EPOCHS - 1 - WARMUP) / (EPOCHS - WARMUP))) / 2
    assert rates[-1] == pytest.approx(last) and rates[-1] < BASE / 1000


def test_a_resumed_schedule_continues_where_it_stopped():
    optimizer = adam(BASE)
    scheduler = WarmupCosine(optimizer, MULTIPLIER, WARMUP, EPOCHS)
    rates_of(scheduler, optimizer, 60)
    state = scheduler.state_dict()
    resumed_optimizer = adam(BASE)
    resumed = WarmupCosine(resumed_optimizer, MULTIPLIER, WARMUP, EPOCHS)
    resumed.load_state_dict(state)
    resumed_optimizer.param_groups[0]["lr"] = optimizer.param_groups[0]["lr"]
    assert rates_of(resumed, resumed_optimizer, 5) == rates_of(scheduler, optimizer, 5)


def test_the_srno_preset_builds_the_srno_schedule():
    preset = OmegaConf.load(PRESET)
    optimizer = instantiate(preset.optimizer)([torch.zeros(1, requires_grad=True)])
    scheduler = instantiate(preset.scheduler)(optimizer)
    epochs = preset.trainer.max_epochs
    assert isinstance(optimizer, torch.optim.Adam)
    assert rates_of(scheduler, optimizer, epochs) == pytest.approx(
        srno_loop_rates(BASE, MULTIPLIER, WARMUP, EPOCHS), rel=1e-12
    )
    assert (preset.data.inp_size, preset.data.sample_q, preset.data.batch_size) == (128, 128**2, 64)


@pytest.mark.parametrize(("m", "warmup", "epochs"), [(0.5, 5, 10), (10, 0, 10), (10, 10, 10)])
def test_a_schedule_without_a_warmup_or_a_cosine_is_refused(m, warmup, epochs):
    with pytest.raises(ValueError, match=r"multiplier|warmup_epochs"):
        WarmupCosine(adam(1e-3), m, warmup, epochs)
