"""Checkpoint saves replace the file whole or not at all, also when the run directory is on
another filesystem than ``$TMPDIR``, the disk fills up, or the process is killed mid-save;
Lightning's own writer tears the previous good ``last.ckpt`` in the first two cases."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from ipe_lightning.atomic import leftover_temporaries
from ipe_lightning.runtime.checkpoint_io import AtomicCheckpointIO, previous_path
from ipe_lightning.runtime.resume import choose_checkpoint
from tests.support.runs import REPO, compose_config


def checkpoint(step: int) -> dict:
    weights = {"w": torch.full((64, 64), float(step))}
    return {"global_step": step, "state_dict": weights, "optimizer_states": []}


def step_of(path) -> int:
    return torch.load(path, weights_only=True)["global_step"]


@pytest.fixture
def other_filesystem_and_full_disk(monkeypatch):
    """Renames across directories fail as across filesystems (EXDEV), so a move is a copy; and
    the copy runs out of disk space a third of the way, as a real full disk did (6.7 of 24.7 MB
    written)."""
    real_rename, real_replace = os.rename, os.replace

    def same_directory_only(real):
        def rename(src, dst, *args, **kwargs):
            if Path(src).resolve().parent != Path(dst).resolve().parent:
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            return real(src, dst, *args, **kwargs)

        return rename

    def copy_until_the_disk_is_full(src, dst, *args, **kwargs):
        data, replacing = Path(src).read_bytes(), Path(dst).exists()
        with open(dst, "wb") as handle:  # a copy truncates its destination first
            handle.write(data[: len(data) // 3] if replacing else data)
        if replacing:  # the disk fills up while the good checkpoint is being replaced
            raise OSError(errno.ENOSPC, "No space left on device")
        return dst

    monkeypatch.setattr(os, "rename", same_directory_only(real_rename))
    monkeypatch.setattr(os, "replace", same_directory_only(real_replace))
    monkeypatch.setattr(shutil, "copyfile", copy_until_the_disk_is_full)


@pytest.mark.parametrize("writer", ["ours", "lightning"])
def test_a_save_across_filesystems_onto_a_full_disk_tears_last_ckpt_only_with_lightning(
    tmp_path, other_filesystem_and_full_disk, writer
):
    io = AtomicCheckpointIO() if writer == "ours" else TorchCheckpointIO()
    run_dir = tmp_path / "run" / "checkpoints"
    io.save_checkpoint(checkpoint(1), run_dir / "last.ckpt")
    assert step_of(run_dir / "last.ckpt") == 1  # the first save went through either way
    try:  # ours writes beside the destination: no move across filesystems, no copy
        io.save_checkpoint(checkpoint(2), run_dir / "last.ckpt")
    except (OSError, RuntimeError):
        assert writer == "lightning"
    try:
        step = step_of(run_dir / "last.ckpt")
    except Exception:  # Lightning's: the copy truncated the good one, then the disk was full
        step = None
    assert step == (2 if writer == "ours" else None)


def test_a_save_that_runs_out_of_disk_names_the_file_and_leaves_the_previous_one(
    tmp_path, monkeypatch
):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint(checkpoint(1), path)
    real_save = torch.save

    def save_half_then_fill_the_disk(obj, handle, *args, **kwargs):
        real_save(obj, handle, *args, **kwargs)
        handle.truncate(handle.tell() // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fill_the_disk)
    with pytest.raises(OSError, match=f"could not write checkpoint {path}.*unchanged") as caught:
        io.save_checkpoint(checkpoint(2), path)
    assert caught.value.errno == errno.ENOSPC
    assert step_of(path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary, no prev


def test_the_replaced_last_checkpoint_is_kept_as_last_prev(tmp_path):
    io = AtomicCheckpointIO()
    for step in (1, 2, 3):
        io.save_checkpoint(checkpoint(step), tmp_path / "last.ckpt")
        io.save_checkpoint(checkpoint(step), tmp_path / "best.ckpt")
    assert previous_path(tmp_path / "last.ckpt") == tmp_path / "last.prev.ckpt"
    assert (step_of(tmp_path / "last.ckpt"), step_of(tmp_path / "last.prev.ckpt")) == (3, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.ckpt",
        "last.ckpt",
        "last.prev.ckpt",
    ]


def test_checkpoints_get_the_permissions_the_umask_gives(tmp_path):
    saved = os.umask(0o002)
    try:
        AtomicCheckpointIO().save_checkpoint(checkpoint(1), tmp_path / "last.ckpt")
    finally:
        os.umask(saved)
    assert (tmp_path / "last.ckpt").stat().st_mode & 0o777 == 0o664


KILLED_MID_SAVE = """
import os, signal, torch
from pathlib import Path
from ipe_lightning.runtime.checkpoint_io import AtomicCheckpointIO

path, io = Path({path!r}), AtomicCheckpointIO()
io.save_checkpoint({{"global_step": 1, "state_dict": {{}}, "optimizer_states": []}}, path)
real_save = torch.save

def killed_half_way(obj, handle, *args, **kwargs):
    real_save(obj, handle, *args, **kwargs)
    handle.truncate(handle.tell() // 2)
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = killed_half_way
io.save_checkpoint({{"global_step": 2, "state_dict": {{"w": torch.zeros(64, 64)}}}}, path)
"""


def test_kill_9_during_a_save_leaves_the_previous_checkpoint_and_the_rerun_cleans_up(tmp_path):
    path = tmp_path / "last.ckpt"
    code = textwrap.dedent(KILLED_MID_SAVE.format(path=str(path)))
    killed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert step_of(path) == 1
    assert len(leftover_temporaries(tmp_path, "*.ckpt")) == 1  # the half-written new one
    chosen, skipped = choose_checkpoint(tmp_path)
    assert (chosen, skipped) == (path, [])
    assert leftover_temporaries(tmp_path) == []


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp", "ddp_cpu"])
def test_every_trainer_config_installs_the_atomic_writer(trainer):
    from hydra.utils import instantiate

    cfg = compose_config([f"trainer={trainer}"])
    (plugin,) = [instantiate(spec) for spec in cfg.trainer.plugins]
    assert isinstance(plugin, AtomicCheckpointIO) and plugin.keep_previous == ("last",)
    if trainer == "cpu":
        built = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
        assert isinstance(built.strategy.checkpoint_io, AtomicCheckpointIO)
