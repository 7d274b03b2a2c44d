"""A checkpoint that cannot be loaded is told by its file and its cause: a newer torch's file is
not called damaged, and a state dict that does not fit is summarised by the keys that differ."""

from __future__ import annotations

import zipfile

import pytest
import torch
from torch import nn

from ipe_lightning.errors import UserError
from ipe_lightning.models.checkpoint_file import (
    CorruptCheckpointError,
    NewerFormatError,
    key_differences,
    load_error_differences,
    load_weights_only,
)


def test_a_file_of_a_newer_torch_is_its_own_error_naming_the_versions(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")
    with (
        zipfile.ZipFile(tmp_path / "ok.pt") as src,
        zipfile.ZipFile(tmp_path / "new.pt", "w") as out,
    ):
        for info in src.infolist():
            body = src.read(info.filename)
            out.writestr(info, b"42\n" if info.filename.endswith("/version") else body)
    with pytest.raises(NewerFormatError) as caught:
        load_weights_only(tmp_path / "new.pt")
    assert isinstance(caught.value, UserError)
    assert not isinstance(caught.value, CorruptCheckpointError)
    message = str(caught.value)
    assert f"{tmp_path / 'new.pt'}" in message and "file format version 42" in message
    assert f"torch {torch.__version__} here reads up to version" in message
    assert "damaged" not in message


def test_torchs_load_error_is_summarised_by_the_keys_that_differ():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4))
    state = {k.replace("0.", "first."): v for k, v in net.state_dict().items()}
    state["1.bias"] = torch.zeros(9)
    with pytest.raises(RuntimeError) as caught:
        net.load_state_dict(state)
    expected = key_differences(
        sorted(set(net.state_dict()) - set(state)),
        sorted(set(state) - set(net.state_dict())),
        ["1.bias"],
    )
    assert load_error_differences(str(caught.value)) == expected
    assert expected == (
        "missing (2): 0.bias, 0.weight; unexpected (2): first.bias, first.weight; "
        "of another shape (1): 1.bias"
    )
    assert load_error_differences("some other failure") == ""


def test_key_differences_show_the_first_keys_of_a_long_list():
    keys = [f"k{i}" for i in range(5)]
    assert key_differences(keys, [], []) == "missing (5): k0, k1, k2, ..."
