"""``test.save_outputs``: each rank writes the 8-bit PNG of every SR image it tested (that ranks
test disjoint images is tests/suite/test_ddp_and_wandb.py's claim)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from ipe_lightning.results import read_per_image
from ipe_lightning.runtime.outputs import SaveOutputs, output_path


def outputs(loader: str, name: str, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    sr = torch.rand(1, 3, 12, 10, generator=generator) * 1.2 - 0.1  # out of range: clamped
    return {"loader": loader, "name": name, "sr": sr}


def test_sr_images_are_written_as_8_bit_png_per_set_and_scale(tmp_path):
    callback = SaveOutputs(str(tmp_path / "outputs"), enabled=True)
    trainer = SimpleNamespace(is_global_zero=False)  # not rank 0: every rank writes its own
    for index, (loader, name) in enumerate([("set5/x2", "bird"), ("div2k/x30", "0801")]):
        callback.on_test_batch_end(trainer, None, outputs(loader, name, index), {}, 0, index)
    path = output_path(tmp_path / "outputs", "div2k/x30", "0801")
    assert path == tmp_path / "outputs" / "div2k" / "x30" / "0801.png"
    written = np.array(Image.open(path))
    assert written.dtype == np.uint8 and written.shape == (12, 10, 3)
    sr = outputs("div2k/x30", "0801", 1)["sr"][0].clamp(0, 1).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(written, (sr * 255).round().astype(np.uint8))
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["outputs/div2k/x30/0801.png", "outputs/set5/x2/bird.png"]


def test_nothing_is_written_unless_enabled(tmp_path):
    callback = SaveOutputs(str(tmp_path / "outputs"))
    callback.on_test_batch_end(SimpleNamespace(), None, outputs("set5/x2", "bird"), {}, 0, 0)
    assert not (tmp_path / "outputs").exists()


def test_the_config_key_turns_it_on_and_debug_runs_mark_their_panels(tmp_path):
    from ipe_lightning.runtime.examples import ExampleImages
    from ipe_lightning.tasks import build_callbacks
    from tests.support.runs import compose_config

    overrides = ["test.save_outputs=true", "test.examples.crop=48", "debug=smoke"]
    callbacks = build_callbacks(compose_config(overrides, tmp_path), loggers=[])
    (saver,) = [c for c in callbacks if isinstance(c, SaveOutputs)]
    assert saver.enabled and saver.dirpath == tmp_path / "outputs"
    (examples,) = [c for c in callbacks if isinstance(c, ExampleImages)]
    assert (examples.crop, examples.center, examples.debug) == (48, (0.5, 0.5), "smoke")
    callbacks = build_callbacks(compose_config([], tmp_path), loggers=[])
    (saver,) = [c for c in callbacks if isinstance(c, SaveOutputs)]
    (examples,) = [c for c in callbacks if isinstance(c, ExampleImages)]
    assert not saver.enabled and examples.debug is None


@pytest.mark.slow  # a tiny test job
def test_test_images_sharing_a_stem_get_their_own_outputs_and_rows(tmp_path):
    from tests.conftest import bundled_photo
    from tests.support.runs import run_in_process, tiny_overrides
    from tests.test_tasks_parts import official_liif_checkpoint

    folder = tmp_path / "hr"
    folder.mkdir()
    photo = bundled_photo("coffee.png")
    Image.fromarray(photo[:72, :80]).save(folder / "same.png")
    Image.fromarray(photo[100:172, 100:180]).save(folder / "same.jpg", quality=95)
    checkpoint = official_liif_checkpoint(tmp_path / "liif.pth")
    overrides = [
        *tiny_overrides(folder, tmp_path / "cache", "[2]"),
        "mode=test",
        f"ckpt_path={checkpoint}",
        "test.save_outputs=true",
    ]
    run_in_process(overrides, tmp_path / "run")
    written = sorted(p.name for p in (tmp_path / "run/outputs/folder/x2").iterdir())
    assert len(written) == 2
    rows = read_per_image(tmp_path / "run")
    assert sorted(row["image"] for row in rows) == [name.removesuffix(".png") for name in written]
