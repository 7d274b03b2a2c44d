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
    read_checkpoint,
)
from ipe_lightning.models.checkpoint_file import CorruptCheckpointError, UnsafeCheckpointError


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
    loaded, info = load_network(path)
    assert info.config["encoding"] == {"_target_": "ipe_lightning.models.encodings.Cell"}
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def _good_checkpoint(path: Path) -> bytes:
    torch.save({"state_dict": {"net.w": torch.ones(32, 32)}, "global_step": 3}, path)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("text", r"not a PyTorch checkpoint \(\d+ bytes, starting b'a: 1"),
        ("empty", r"the file is empty \(0 bytes\)"),
        ("truncated", r"the archive is truncated or damaged"),
        ("zeros", r"the file holds only zero bytes"),
    ],
)
def test_an_unreadable_checkpoint_gets_one_message_naming_the_file_and_what_is_wrong(
    tmp_path, kind, reason
):
    path = tmp_path / "last.ckpt"
    data = _good_checkpoint(path)
    path.write_bytes(
        {
            "text": b"a: 1\nb: [2]\n",  # torch: IndexError: pop from empty list
            "empty": b"",  # torch: a bare EOFError
            "truncated": data[: len(data) // 3],  # torch: a miniz error without the path
            "zeros": bytes(len(data)),  # a crash on some filesystems; was called unsafe
        }[kind]
    )
    with pytest.raises(CorruptCheckpointError, match=reason) as caught:
        load_network(path)
    assert not isinstance(caught.value, UnsafeCheckpointError)
    assert str(caught.value).startswith(f"cannot read checkpoint {str(path)!r}: ")
    assert caught.value.path == str(path)


def test_corrupt_and_unsafe_are_different_errors_both_naming_the_file(tmp_path):
    marker, planted = tmp_path / "code-ran", tmp_path / "evil.ckpt"
    planted.write_bytes(pickle.dumps({"state_dict": {}, "payload": _CreatesFile(marker)}))
    with pytest.raises(UnsafeCheckpointError, match=r"pathlib\.Path\.touch") as caught:
        read_checkpoint(planted)
    assert not isinstance(caught.value, CorruptCheckpointError)
    assert caught.value.path == str(planted) and not marker.exists()
    assert issubclass(CorruptCheckpointError, ValueError)
    assert issubclass(UnsafeCheckpointError, ValueError)
