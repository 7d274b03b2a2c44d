"""A tiny network for tests that need one but not its quality: LIIF with a one-block, 8-feature
EDSR-baseline and a 16-unit MLP, seeded, in eval mode."""

from __future__ import annotations

from functools import partial

import torch

from ipe_lightning.models import LIIF, Cell, EDSRBaseline, PlainMLP


def tiny_net() -> LIIF:
    torch.manual_seed(0)
    encoder = EDSRBaseline(n_resblocks=1, n_feats=8)
    return LIIF(encoder, encoding=Cell(), mlp=partial(PlainMLP, hidden=[16])).eval()
