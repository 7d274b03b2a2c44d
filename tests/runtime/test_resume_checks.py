"""A training is refused, before the trainer restores anything, a checkpoint it cannot continue
(another project's file, another model's, one past ``trainer.max_epochs``), naming the file and
what it holds; a checkpoint of a newer torch stops the run without being moved aside."""

from __future__ import annotations

import zipfile

import pytest
import torch
from torch import nn

from ipe_lightning.errors import SettingError, user_message
from ipe_lightning.models.checkpoint_file import CheckpointMismatchError, NewerFormatError
from ipe_lightning.runtime.resume import (
    Resuming,
    check_resumable,
    choose_checkpoint,
    completed_epochs,
    resume_checkpoint,
)


class Module(nn.Module):
    """What check_resumable reads of the LightningModule: its hparams and its ``net.`` keys."""

    def __init__(self, model_name: str = "ipe_liif", width: int = 4) -> None:
        super().__init__()
        self.hparams = {"model_name": model_name}
        self.net = nn.Sequential(nn.Linear(2, width), nn.Linear(width, 3))


def training_checkpoint(module: Module, epochs: int = 1, state=None) -> dict:
    progress = {k: epochs for k in ("ready", "started", "processed", "completed")}
    return {
        "epoch": epochs,
        "global_step": 10 * epochs,
        "state_dict": module.state_dict() if state is None else state,
        "optimizer_states": [],
        "hyper_parameters": {"model_name": module.hparams["model_name"]},
        "loops": {"fit_loop": {"epoch_progress": {"current": progress, "total": progress}}},
    }


def saved(tmp_path, checkpoint, name="given.ckpt") -> Resuming:
    torch.save(checkpoint, tmp_path / name)
    return Resuming(str(tmp_path / name), given=True)


def test_a_checkpoint_of_this_model_within_max_epochs_passes(tmp_path):
    module = Module()
    resuming = saved(tmp_path, training_checkpoint(module, epochs=3))
    for max_epochs in (3, 10, -1, None):
        check_resumable(resuming, module, max_epochs)


def test_another_projects_file_is_refused_naming_it_and_what_it_holds(tmp_path):
    resuming = saved(tmp_path, {"model_state": {"w": torch.zeros(2)}, "epoch": 3}, "other.pth")
    with pytest.raises(CheckpointMismatchError) as caught:
        check_resumable(resuming, Module(), 5)
    message = user_message(caught.value)
    assert message.startswith(f"ckpt_path={tmp_path / 'other.pth'} is not a training checkpoint")
    assert "['epoch', 'model_state']" in message and "no ckpt_path" in message


def test_another_models_checkpoint_is_refused_saying_which_model_it_holds(tmp_path):
    resuming = saved(tmp_path, training_checkpoint(Module("liif")))
    with pytest.raises(CheckpointMismatchError, match=r"holds liif \(trained as model=liif\)") as c:
        check_resumable(resuming, Module("ipe_liif"), 5)
    assert "continue it with model=liif" in str(c.value) and "builds ipe_liif" in str(c.value)


def test_renamed_and_reshaped_keys_are_listed_with_their_counts(tmp_path):
    module = Module()
    state = {k.replace("net.0.", "net.first."): v for k, v in module.state_dict().items()}
    state["net.1.bias"] = torch.zeros(7)
    resuming = saved(tmp_path, training_checkpoint(module, state=state))
    with pytest.raises(CheckpointMismatchError) as caught:
        check_resumable(resuming, module, 5)
    message = str(caught.value)
    assert "missing (2): net.0.bias, net.0.weight" in message
    assert "unexpected (2): net.first.bias, net.first.weight" in message
    assert "of another shape (1): net.1.bias" in message


def test_max_epochs_below_the_checkpoints_epochs_is_refused(tmp_path):
    module = Module()
    torch.save(training_checkpoint(module, epochs=3), tmp_path / "last.ckpt")
    resuming = Resuming(str(tmp_path / "last.ckpt"), given=False)
    with pytest.raises(SettingError) as caught:
        check_resumable(resuming, module, 2)
    assert str(caught.value) == (
        f"trainer.max_epochs=2, but {tmp_path / 'last.ckpt'} (resume=auto) has already trained 3 "
        "epochs: give trainer.max_epochs >= 3 to continue it, or resume=never to start afresh"
    )


def test_completed_epochs_are_the_fit_loops_count_else_the_epoch():
    assert completed_epochs(training_checkpoint(Module(), epochs=4)) == 4
    assert completed_epochs({"epoch": 2}) == 2 and completed_epochs({}) == 0


def newer_torch_checkpoint(path, version: int = 99) -> None:
    """A complete checkpoint whose archive says a newer torch wrote it."""
    torch.save(training_checkpoint(Module()), path.with_suffix(".tmp"))
    with zipfile.ZipFile(path.with_suffix(".tmp")) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            body = src.read(info.filename)
            out.writestr(
                info, f"{version}\n".encode() if info.filename.endswith("/version") else body
            )
    path.with_suffix(".tmp").unlink()


def test_a_last_ckpt_of_a_newer_torch_stops_the_run_and_stays_where_it_is(tmp_path):
    torch.save(training_checkpoint(Module(), epochs=1), tmp_path / "last.prev.ckpt")
    newer_torch_checkpoint(tmp_path / "last.ckpt")
    with pytest.raises(NewerFormatError) as caught:
        resume_checkpoint(tmp_path)  # not last.prev.ckpt: that would drop the newer steps
    message = user_message(caught.value)
    assert "was written by a newer PyTorch (file format version 99" in message
    assert "damaged" not in message and "corrupt" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "last.prev.ckpt"]
    with pytest.raises(NewerFormatError):
        choose_checkpoint(tmp_path, move_aside=True)
    assert (tmp_path / "last.ckpt").is_file()
