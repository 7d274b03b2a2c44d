"""``resume=auto`` continues from the newest checkpoint that can be read: an unreadable
``last.ckpt`` is reported (path and reason) and moved aside, never resumed from."""

from __future__ import annotations

import logging
import os
import pickle

import pytest
import torch

from ipe_lightning.models.checkpoint_file import CorruptCheckpointError
from ipe_lightning.runtime.resume import choose_checkpoint, resume_checkpoint
from tests.runtime.test_checkpoint_io import other_filesystem_and_full_disk  # noqa: F401


def save(path, step: int, when: float) -> None:
    torch.save({"global_step": step, "state_dict": {}, "optimizer_states": []}, path)
    os.utime(path, (when, when))


class _CreatesFile:
    def __reduce__(self):
        return (os.system, ("true",))


def spoil(path, kind: str) -> None:
    """Make ``path`` unreadable the way ``kind`` says."""
    data = path.read_bytes() if path.exists() else b""
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 3])
    elif kind == "text":
        path.write_text("slurmstepd: error: *** JOB 123 CANCELLED ***\n")
    elif kind == "zeros":
        path.write_bytes(bytes(len(data)))
    elif kind == "unsafe":
        path.write_bytes(pickle.dumps({"state_dict": {}, "payload": _CreatesFile()}))


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "zeros", "unsafe"])
def test_an_unreadable_last_ckpt_is_reported_moved_aside_and_the_previous_one_resumed(
    tmp_path, caplog, kind
):
    save(tmp_path / "last.prev.ckpt", 2, when=1000)
    save(tmp_path / "last.ckpt", 3, when=2000)
    spoil(tmp_path / "last.ckpt", kind)
    with caplog.at_level(logging.INFO, logger="ipe_lightning"):
        chosen = resume_checkpoint(tmp_path)
    assert chosen == str(tmp_path / "last.prev.ckpt")
    (moved,) = [p.name for p in tmp_path.iterdir() if p.name.startswith("last.ckpt.")]
    assert moved.startswith("last.ckpt.unsafe-" if kind == "unsafe" else "last.ckpt.corrupt-")
    assert not (tmp_path / "last.ckpt").exists()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"not resuming from {tmp_path / 'last.ckpt'}: " in warning and moved in warning
    assert f"resuming from {tmp_path / 'last.prev.ckpt'}" in caplog.text


def test_a_last_ckpt_torn_across_filesystems_resumes_from_the_newest_readable_one(
    tmp_path,
    other_filesystem_and_full_disk,  # noqa: F811
):
    from pytorch_lightning.plugins.io import TorchCheckpointIO

    io = TorchCheckpointIO()  # what wrote checkpoints before ours: tears on a full disk
    good = {"global_step": 3, "state_dict": {"w": torch.ones(64, 64)}, "optimizer_states": []}
    io.save_checkpoint(good, tmp_path / "best.ckpt")
    io.save_checkpoint(good, tmp_path / "last.ckpt")
    with pytest.raises(OSError):
        io.save_checkpoint({**good, "global_step": 6}, tmp_path / "last.ckpt")
    chosen, skipped = choose_checkpoint(tmp_path)
    assert chosen == tmp_path / "best.ckpt"
    (torn,) = skipped
    assert torn.path == tmp_path / "last.ckpt" and "truncated" in torn.reason


def test_with_no_readable_checkpoint_the_run_starts_afresh_with_a_warning(tmp_path, caplog):
    save(tmp_path / "last.ckpt", 3, when=2000)
    spoil(tmp_path / "last.ckpt", "empty")
    with caplog.at_level(logging.INFO, logger="ipe_lightning"):
        assert resume_checkpoint(tmp_path) is None
    assert "0 bytes" in caplog.text and f"no readable checkpoint in {tmp_path}" in caplog.text


def test_the_newest_readable_checkpoint_wins_and_a_weights_only_file_is_skipped_in_place(
    tmp_path,
):
    save(tmp_path / "best.ckpt", 2, when=1000)
    save(tmp_path / "last.ckpt", 3, when=2000)
    torch.save({"state_dict": {}}, tmp_path / "weights.ckpt")  # newest, but no training state
    chosen, skipped = choose_checkpoint(tmp_path)
    assert chosen == tmp_path / "last.ckpt"
    assert [(s.path.name, s.moved_to) for s in skipped] == [("weights.ckpt", None)]
    assert (tmp_path / "weights.ckpt").exists()


def test_ranks_other_than_zero_choose_the_same_checkpoint_without_moving_files(tmp_path):
    save(tmp_path / "last.prev.ckpt", 2, when=1000)
    save(tmp_path / "last.ckpt", 3, when=2000)
    spoil(tmp_path / "last.ckpt", "truncated")
    chosen, skipped = choose_checkpoint(tmp_path, move_aside=False)
    assert chosen == tmp_path / "last.prev.ckpt" and skipped[0].moved_to is None
    assert (tmp_path / "last.ckpt").exists()


def test_an_explicit_ckpt_path_is_used_as_given_or_refused_naming_it(tmp_path):
    save(tmp_path / "mine.ckpt", 3, when=1000)
    assert resume_checkpoint(tmp_path / "run", str(tmp_path / "mine.ckpt")) == str(
        tmp_path / "mine.ckpt"
    )
    spoil(tmp_path / "mine.ckpt", "truncated")
    with pytest.raises(CorruptCheckpointError, match=r"mine\.ckpt.*truncated"):
        resume_checkpoint(tmp_path / "run", str(tmp_path / "mine.ckpt"))
    assert resume_checkpoint(tmp_path, resume="never") is None
    assert resume_checkpoint(tmp_path / "no-such-dir") is None
