"""Checkpoint loading never executes code from the file (weights_only=True)."""

import pickle
from functools import partial
from pathlib import Path

import pytest
import torch

from ipe_lightning.models import (
    LIIF,
    Cell,
    EDSRBaseline,
    PlainMLP,
    from_liif_checkpoint,
    load_network,
)


class _CreatesFile:
    """Unpickling this object would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("loader", [load_network, from_liif_checkpoint])
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, loader):
    marker = tmp_path / "code-ran"
    planted = tmp_path / "evil.ckpt"
    with open(planted, "wb") as handle:
        pickle.dump({"model": {"name": "liif", "sd": {}, "payload": _CreatesFile(marker)}}, handle)
    with pytest.raises(ValueError, match=r"refusing to load .*would execute code"):
        loader(planted)
    assert not marker.exists()


def test_plain_tensor_checkpoints_still_load(tmp_path):
    net = LIIF(
        EDSRBaseline(n_resblocks=1, n_feats=4), encoding=Cell(), mlp=partial(PlainMLP, hidden=[8])
    )
    sd = {
        f"imnet.{k.removeprefix('mlp.')}" if k.startswith("mlp.") else k: v
        for k, v in net.state_dict().items()
    }
    spec = {
        "name": "liif",
        "args": {
            "encoder_spec": {"name": "edsr-baseline", "args": {"n_resblocks": 1, "n_feats": 4}},
            "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [8]}},
        },
        "sd": sd,
    }
    path = tmp_path / "liif.pth"
    torch.save({"model": spec}, path)
    loaded, config = load_network(path)
    assert config["encoding"] == {"_target_": "ipe_lightning.models.encodings.Cell"}
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
