"""A checkpoint save that runs out of disk is told by its cause, "No space left on device", not
by torch's archive writer ("unexpected pos"), and leaves the previous checkpoint to resume from."""

from __future__ import annotations

import contextlib
import errno
import io

import pytest
import torch

from ipe_lightning.errors import describe, user_message
from ipe_lightning.runtime import checkpoint_io
from ipe_lightning.runtime.checkpoint_io import AtomicCheckpointIO
from ipe_lightning.runtime.resume import resume_checkpoint


class FullDisk(io.BytesIO):
    """A file on a disk with ``room`` bytes free."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_torch_writing_onto_a_full_disk_reports_its_own_error():
    # the premise: torch's zip writer turns the failed write into "unexpected pos"
    with pytest.raises(RuntimeError, match="unexpected pos") as caught:
        torch.save({"w": torch.zeros(10_000)}, FullDisk(3000))
    assert isinstance(caught.value.__context__, OSError)


def test_a_checkpoint_save_onto_a_full_disk_is_told_as_no_space_left(tmp_path, monkeypatch):
    io_ = AtomicCheckpointIO()
    state = {"global_step": 1, "state_dict": {"w": torch.ones(10_000)}, "optimizer_states": []}
    io_.save_checkpoint(state, tmp_path / "last.ckpt")

    @contextlib.contextmanager
    def full_disk(path, mode, previous=None):
        yield FullDisk(3000)

    monkeypatch.setattr(checkpoint_io, "atomic_open", full_disk)
    with pytest.raises(OSError) as caught:
        io_.save_checkpoint({**state, "global_step": 2}, tmp_path / "last.ckpt")
    assert caught.value.errno == errno.ENOSPC
    told = user_message(caught.value)
    assert told.startswith(f"could not write checkpoint {tmp_path / 'last.ckpt'}: No space left")
    assert told.endswith("the previous last.ckpt is unchanged")
    assert "unexpected pos" not in describe(caught.value)
    assert resume_checkpoint(tmp_path) == str(tmp_path / "last.ckpt")


def test_the_record_of_an_unwrapped_torch_error_names_the_full_disk():
    try:
        torch.save({"w": torch.zeros(10_000)}, FullDisk(3000))
    except RuntimeError as error:
        recorded = describe(error)
    assert recorded == "OSError: [Errno 28] No space left on device"
