"""mode=predict: image files in, 8-bit PNGs out; bad inputs reported and skipped; one output per
input; sizes that cannot fit in memory refused before anything runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ipe_lightning import predict as predict_module
from ipe_lightning.inference import upsample
from ipe_lightning.models import LIIF, Cell, EDSRBaseline, PlainMLP
from tests.conftest import bundled_photo
from tests.support.networks import tiny_net
from tests.support.runs import run_script


@pytest.fixture
def liif_checkpoint(tmp_path):
    """A small network saved in the official LIIF layout, and the network itself."""
    torch.manual_seed(0)
    encoder = EDSRBaseline(n_resblocks=1, n_feats=8)
    net = LIIF(encoder, encoding=Cell(), mlp=partial(PlainMLP, hidden=[16]))
    sd = {("imnet." + k[4:] if k.startswith("mlp.") else k): v for k, v in net.state_dict().items()}
    args = {
        "encoder_spec": {"name": "edsr-baseline", "args": {"n_resblocks": 1, "n_feats": 8}},
        "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [16]}},
    }
    path = tmp_path / "liif.pth"
    torch.save({"model": {"name": "liif", "args": args, "sd": sd}}, path)
    return path, net.eval()


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    photo = bundled_photo("coffee.png")[:30, :40]
    Image.fromarray(photo).save(folder / "rgb.png")
    Image.fromarray(photo).convert("RGBA").save(folder / "rgba.png")
    rotated = Image.fromarray(photo).convert("L")
    exif = rotated.getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90° clockwise to display
    rotated.save(folder / "gray_rotated.jpg", exif=exif)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (folder / "notes.txt").write_text("not an image")
    return folder, photo


def predict(checkpoint, folder, out, *extra):
    overrides = [
        "mode=predict",
        f"ckpt_path={checkpoint}",
        f"predict.input={folder}",
        f"predict.output_dir={out}",
        *extra,
    ]
    return run_script("run.py", overrides, out.parent / "hydra")


@pytest.mark.slow
def test_predict_writes_pngs_skips_unreadable_files_and_fails_at_the_end(
    liif_checkpoint, inputs, tmp_path
):
    checkpoint, net = liif_checkpoint
    folder, photo = inputs
    out = tmp_path / "out"
    result = predict(checkpoint, folder, out, "predict.scale=2.5")
    assert result.returncode != 0
    assert "broken.png" in result.stdout + result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "gray_rotated_x2.5.png",
        "rgb_x2.5.png",
        "rgba_x2.5.png",
    ]
    rgb = np.array(Image.open(out / "rgb_x2.5.png"))
    assert rgb.shape == (75, 100, 3) and rgb.dtype == np.uint8
    image = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    expected = upsample(net, image, scale=2.5)[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(rgb.astype(float) - expected).max() <= 0.5 + 1e-3  # only the 8-bit rounding
    assert np.array_equal(np.array(Image.open(out / "rgba_x2.5.png")), rgb)  # alpha dropped
    gray = np.array(Image.open(out / "gray_rotated_x2.5.png"))
    assert gray.shape == (100, 75, 3)  # EXIF orientation applied before upsampling


@pytest.mark.slow
def test_existing_outputs_are_kept_unless_overwrite(liif_checkpoint, inputs, tmp_path):
    checkpoint, _ = liif_checkpoint
    folder, _ = inputs
    (folder / "broken.png").unlink()
    out = tmp_path / "out"
    first = predict(checkpoint, folder, out, "predict.scale=[2,3]")
    assert first.returncode == 0, first.stderr[-2000:]
    # the run's last line says how long it took
    assert re.search(r"run.py finished in [\d.]+ s \(wall time", first.stdout.splitlines()[-1])
    target = out / "rgb_x2x3.png"
    assert np.array(Image.open(target)).shape == (60, 120, 3)
    target.write_bytes(b"sentinel")
    kept = predict(checkpoint, folder, out, "predict.scale=[2,3]")
    assert kept.returncode == 0 and target.read_bytes() == b"sentinel"
    assert "overwrite=true" in kept.stdout
    replaced = predict(checkpoint, folder, out, "predict.scale=[2,3]", "predict.overwrite=true")
    assert replaced.returncode == 0 and target.read_bytes() != b"sentinel"


@pytest.mark.slow
def test_predict_to_a_size(liif_checkpoint, inputs, tmp_path):
    checkpoint, _ = liif_checkpoint
    folder, _ = inputs
    single = folder / "rgb.png"
    out = tmp_path / "out"
    result = predict(checkpoint, single, out, "predict.size=[64,50]")
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.array(Image.open(out / "rgb_64x50.png")).shape == (64, 50, 3)


def test_output_names_are_unique_per_input_ignoring_case():
    files = [Path(name) for name in ("same.PNG", "same.jpg", "other.png", "same_png.jpg")]
    assert predict_module.output_names(files, 2, None) == [
        "same_PNG_x2.png",
        "same_jpg_x2.png",
        "other_x2.png",
        "same_png_2_x2.png",  # same_PNG_x2.png is taken on a case-insensitive file system
    ]
    assert predict_module.output_names([Path("a.png")], None, [64, 50]) == ["a_64x50.png"]


def test_inputs_sharing_a_stem_each_get_their_own_output(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    photo = bundled_photo("coffee.png")[:20, :24]
    Image.fromarray(photo).save(folder / "same.PNG")
    Image.fromarray(photo[:, ::-1].copy()).save(folder / "same.jpg", quality=95)
    net = tiny_net()
    files = predict_module.input_files(folder)
    summary = predict_module.predict_files(net, files, tmp_path / "out", scale=2)
    assert sorted(p.name for p in summary.written) == ["same_PNG_x2.png", "same_jpg_x2.png"]
    for name, source in (("same_PNG_x2.png", "same.PNG"), ("same_jpg_x2.png", "same.jpg")):
        pixels = np.asarray(Image.open(folder / source).convert("RGB"))
        image = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255
        expected = upsample(net, image, scale=2)[0].permute(1, 2, 0).numpy() * 255
        written = np.asarray(Image.open(tmp_path / "out" / name)).astype(float)
        assert np.abs(written - expected).max() <= 0.5 + 1e-3


@pytest.fixture
def one_input(tmp_path):
    path = tmp_path / "in" / "photo.png"
    path.parent.mkdir()
    Image.fromarray(bundled_photo("coffee.png")[:30, :40]).save(path)
    return path


def test_a_size_that_cannot_fit_is_refused_before_anything_runs(one_input, tmp_path, monkeypatch):
    def started(*args, **kwargs):
        raise AssertionError("upsampling started")

    monkeypatch.setattr(predict_module, "upsample", started)
    monkeypatch.setattr(predict_module, "available_memory", lambda device: 16 * 10**9)
    out = tmp_path / "out"
    with pytest.raises(predict_module.OutputTooLargeError) as error:
        predict_module.predict_files(tiny_net(), [one_input], out, size=[30000, 30000])
    message = str(error.value)
    assert "predict.size=[30000,30000] cannot fit in memory" in message
    assert "photo.png: LR 30x40 -> HR 30000x30000" in message
    assert "output 10.8 GB float32" in message and "16.0 GB available" in message
    assert "smaller predict.size" in message and "test.tile=" in message
    assert not out.exists()


def test_a_size_no_machine_holds_is_refused_with_the_real_free_memory(one_input, tmp_path):
    with pytest.raises(predict_module.OutputTooLargeError, match="HR 100000x100000 needs about"):
        predict_module.predict_files(tiny_net(), [one_input], tmp_path / "out", size=[10**5] * 2)


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux's resettable VmHWM"
)
def test_the_estimate_is_close_to_the_measured_peak_on_the_cpu(one_input, tmp_path):
    """The oracle: the growth of the process's peak resident memory while one image upsamples.

    The peak is the kernel's high-water mark of this address space (``VmHWM``), reset just before
    the upsampling. Not ``getrusage``'s ``ru_maxrss``: the kernel carries the forking parent's
    high-water mark into it through ``exec``, so a child of a large pytest process (at the end of
    the slow suite) reported the parent's 1.8 GB as its own peak.
    """
    script = textwrap.dedent(
        f"""
        import os, torch
        from functools import partial
        from pathlib import Path
        from ipe_lightning import predict
        from ipe_lightning.models import LIIF, Cell, EDSRBaseline, PlainMLP
        def status(key):
            with open("/proc/self/status") as lines:
                for line in lines:
                    if line.startswith(key):
                        return int(line.split()[1]) * 1024  # the file counts kB
        torch.set_num_threads(1)
        net = LIIF(EDSRBaseline(n_resblocks=1, n_feats=8), encoding=Cell(),
                   mlp=partial(PlainMLP, hidden=[16])).eval()
        source = Path({str(one_input)!r})
        predict.predict_files(net, [source], Path({str(tmp_path / "warm")!r}), size=[60, 80])
        with open("/proc/self/clear_refs", "w") as reset:
            reset.write("5")  # VmHWM := VmRSS
        before = status("VmRSS:")
        predict.predict_files(net, [source], Path({str(tmp_path / "out")!r}), size=[1500, 2000])
        peak = status("VmHWM:")
        print(peak - before, predict.estimate_memory(net, (30, 40), (1500, 2000)).device_peak)
        """
    )
    # The estimate is of live memory. With the allocator tuning (ipe_lightning/allocator.py) the
    # heap also keeps the holes of freed buffers, so the process's peak is measured without it.
    # glibc's default raises its mmap threshold to the size of each freed mapping, so later
    # buffers of that size stay in the heap too: a fixed threshold (128 KiB, the default's
    # start) turns that off and every large buffer is returned when freed.
    environment = {**os.environ, "IPE_LIGHTNING_MALLOC_TUNING": "0"}
    for name in ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"):
        environment.pop(name, None)
    environment["MALLOC_MMAP_THRESHOLD_"] = "131072"
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env=environment,
    )
    measured, estimated = map(int, result.stdout.split()[-2:])
    # an upper bound of the live peak (the refusal must not let too large an output through),
    # and not a wild one (it counts the decoder's tile buffers whole)
    assert 0.9 * measured <= estimated <= 2.5 * measured


def test_the_query_budget_reaches_every_upsampling_and_the_memory_estimate(
    one_input, tmp_path, monkeypatch
):
    from ipe_lightning.inference import QueryBudget

    budget = QueryBudget(max_queries=123, tile=7)
    seen: dict[str, object] = {}
    real_estimate = predict_module.estimate_inputs

    def estimate(net, files, scale, size, budget, device):
        seen["estimate"] = budget
        return real_estimate(net, files, scale, size, budget, device)

    def fake_upsample(net, image, **options):
        seen["upsample"] = (options["max_queries"], options["tile"])
        return upsample(net, image, scale=options["scale"], size=options["size"])

    monkeypatch.setattr(predict_module, "estimate_inputs", estimate)
    monkeypatch.setattr(predict_module, "upsample", fake_upsample)
    predict_module.predict_files(tiny_net(), [one_input], tmp_path / "out", scale=2, budget=budget)
    assert seen == {"estimate": budget, "upsample": (123, 7)}


def test_a_png_whose_write_fails_midway_is_not_left_torn_and_a_rerun_writes_it(
    one_input, tmp_path, monkeypatch
):
    import io

    save = Image.Image.save

    def killed_midway(image, target, format=None, **options):
        encoded = io.BytesIO()
        save(image, encoded, format="PNG")
        half = encoded.getvalue()[: len(encoded.getvalue()) // 2]
        if hasattr(target, "write"):
            target.write(half)
        else:
            Path(target).write_bytes(half)
        raise OSError("killed while writing")

    out = tmp_path / "out"
    monkeypatch.setattr(Image.Image, "save", killed_midway)
    with pytest.raises(OSError, match="killed while writing"):
        predict_module.predict_files(tiny_net(), [one_input], out, scale=2)
    assert list(out.iterdir()) == []  # no torn PNG, no temporary file
    monkeypatch.setattr(Image.Image, "save", save)
    summary = predict_module.predict_files(tiny_net(), [one_input], out, scale=2)
    assert summary.written == [out / "photo_x2.png"] and not summary.existing
    assert Image.open(out / "photo_x2.png").size == (80, 60)


def test_an_input_whose_output_name_is_too_long_gets_a_shorter_one_and_all_are_written(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    photo = Image.fromarray(bundled_photo("coffee.png")[:12, :16])
    long_stem = "a" * 250  # the longest a .png input can have
    for name in (f"{long_stem}.png", "b.png"):
        photo.save(folder / name)
    files = predict_module.input_files(folder)
    summary = predict_module.predict_files(tiny_net(), files, tmp_path / "out", scale=2)
    names = sorted(path.name for path in summary.written)
    assert len(names) == 2 and names[1] == "b_x2.png"
    assert names[0].startswith("a" * 100) and names[0].endswith("_x2.png")
    assert len(names[0].encode()) <= predict_module.OUTPUT_NAME_MAX


def test_shortened_names_stay_distinct_and_whole_characters():
    stems = ["é" * 200 + "1", "é" * 200 + "2"]
    names = [predict_module.output_name(stem, 2, None) for stem in stems]
    assert names[0] != names[1]
    for name in names:
        assert len(name.encode()) <= predict_module.OUTPUT_NAME_MAX
        assert name.startswith("é" * 50) and name.endswith("_x2.png")
    assert predict_module.output_name("short", [2, 3], None) == "short_x2x3.png"


def test_unique_stems_name_each_file_once():
    from ipe_lightning.data.images import unique_stems

    files = [Path(name) for name in ("same.png", "same.jpg", "other.png", "x/other.bmp")]
    assert unique_stems(files) == ["same_png", "same_jpg", "other_png", "other_bmp"]
