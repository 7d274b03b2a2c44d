"""Every supported file decodes to RGB uint8; folders list only images; the scan finds bad files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from ipe_lightning.data.images import (
    BadImageError,
    DataWarning,
    check_images,
    decode_rgb,
    list_images,
    readable_images,
    scale_16bit_to_8bit,
    scan_images,
)


def rounded_8bit(samples: np.ndarray) -> np.ndarray:
    """The oracle: round(v · 255 / 65535) in float64."""
    return np.round(samples.astype(np.float64) * 255 / 65535).astype(np.uint8)


def test_16bit_scaling_rounds_every_value_like_float_arithmetic():
    values = np.arange(65536, dtype=np.uint16)
    scaled = scale_16bit_to_8bit(values)
    np.testing.assert_array_equal(scaled, rounded_8bit(values))
    # and it is not the high byte (what truncation would give)
    assert np.count_nonzero(scaled != values >> 8) > 10000


def test_gray_is_expanded_to_three_equal_channels(tmp_path, rng):
    gray = rng.integers(0, 256, (9, 13), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    np.testing.assert_array_equal(decode_rgb(tmp_path / "g.png"), np.stack([gray] * 3, -1))


def test_palette_is_expanded_through_its_colour_table(tmp_path, rng):
    table = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    index = rng.integers(0, 256, (8, 11), dtype=np.uint8)
    image = Image.fromarray(index, mode="P")
    image.putpalette(table.ravel().tolist())
    image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(decode_rgb(tmp_path / "p.png"), table[index])


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_dropped_not_composited(tmp_path, rng, mode):
    colour = rng.integers(0, 256, (10, 7, 3), dtype=np.uint8)
    if mode == "LA":
        colour[..., 1] = colour[..., 2] = colour[..., 0]
    alpha = rng.integers(0, 256, (10, 7, 1), dtype=np.uint8)
    pixels = (
        np.concatenate([colour, alpha], -1)
        if mode == "RGBA"
        else np.concatenate([colour[..., :1], alpha], -1)
    )
    Image.fromarray(pixels, mode=mode).save(tmp_path / "a.png")
    np.testing.assert_array_equal(decode_rgb(tmp_path / "a.png"), colour)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_is_scaled_with_rounding_not_truncated(tmp_path, make, rng, channels):
    samples = rng.integers(0, 65536, (21, 19, channels), dtype=np.uint16)
    samples[0, :4, 0] = [0, 128, 383, 65535]  # 128 and 383 round up, truncation gives 0 and 1
    path = make.write_png16(tmp_path / "s16.png", samples)
    colour = samples[..., [0, 0, 0]] if channels <= 2 else samples[..., :3]
    decoded = decode_rgb(path)
    np.testing.assert_array_equal(decoded, rounded_8bit(colour))
    assert decoded.dtype == np.uint8 and decoded.flags.c_contiguous


def test_16bit_rgb_tiff_is_scaled_with_rounding(tmp_path, rng):
    samples = rng.integers(0, 65536, (12, 15, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "s16.tif", samples, photometric="rgb")
    np.testing.assert_array_equal(decode_rgb(tmp_path / "s16.tif"), rounded_8bit(samples))


def test_16bit_gray_tiff_is_scaled_with_rounding(tmp_path, rng):
    samples = rng.integers(0, 65536, (12, 15), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "g16.tif", samples)
    expected = rounded_8bit(np.stack([samples] * 3, -1))
    np.testing.assert_array_equal(decode_rgb(tmp_path / "g16.tif"), expected)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_exif_orientation_is_applied_as_pillow_does(tmp_path, rng, orientation, suffix):
    pixels = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{suffix}"
    Image.fromarray(pixels).save(path, exif=exif)
    with Image.open(path) as image:
        expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    decoded = decode_rgb(path)
    np.testing.assert_array_equal(decoded, expected)
    assert decoded.shape[:2] == ((10, 6) if orientation >= 5 else (6, 10))


@pytest.mark.parametrize("suffix", [".bmp", ".tif", ".webp", ".PNG"])
def test_lossless_formats_decode_to_the_written_pixels(tmp_path, rng, suffix):
    pixels = rng.integers(0, 256, (9, 14, 3), dtype=np.uint8)
    options = {"lossless": True} if suffix == ".webp" else {}
    Image.fromarray(pixels).save(tmp_path / f"x{suffix}", **options)
    np.testing.assert_array_equal(decode_rgb(tmp_path / f"x{suffix}"), pixels)


def test_folder_listing_keeps_images_only_sorted_by_name(hr_folder):
    (hr_folder / "._a.png").write_bytes(b"\0\0")  # macOS metadata next to a real image
    (hr_folder / "sub").mkdir()
    (hr_folder / "sub" / "d.png").write_bytes(b"")
    (hr_folder / "E.PNG").write_bytes((hr_folder / "a.png").read_bytes())
    assert [p.name for p in list_images(hr_folder)] == ["E.PNG", "a.png", "b.jpg", "c.bmp"]


def test_scan_reads_sizes_and_names_corrupt_files(tmp_path, hr_folder):
    (hr_folder / "garbage.png").write_bytes(b"this is not a png at all")
    (hr_folder / "empty.jpg").write_bytes(b"")
    Image.fromarray(np.zeros((4, 5), np.float32)).save(hr_folder / "float.tif")
    result = scan_images(list_images(hr_folder))
    assert {p.name for p in result.bad} == {"garbage.png", "empty.jpg", "float.tif"}
    assert "unsupported pixel format 'F'" in result.bad[hr_folder / "float.tif"]
    assert result.sizes == {
        hr_folder / "a.png": (60, 50),
        hr_folder / "b.jpg": (48, 64),
        hr_folder / "c.bmp": (52, 52),
    }


def test_truncated_pixel_data_passes_the_header_scan_but_fails_to_decode(tmp_path, make, rng):
    path = make.save_png(tmp_path / "t.png", make.random_rgb(rng, 40, 40))
    path.write_bytes(path.read_bytes()[:300])
    assert path in scan_images([path]).sizes
    with pytest.raises(OSError):
        decode_rgb(path)


def test_bad_files_are_an_error_listing_them_unless_skipped(hr_folder):
    (hr_folder / "garbage.png").write_bytes(b"junk")
    (hr_folder / "broken.jpg").write_bytes(b"\xff\xd8junk")
    paths = list_images(hr_folder)
    with pytest.raises(BadImageError) as error:
        readable_images(paths, skip_bad=False, what="the test folder")
    message = str(error.value)
    assert "2 unreadable or corrupt image file(s) in the test folder" in message
    assert "garbage.png" in message and "broken.jpg" in message
    assert "data.skip_bad=true" in message

    with pytest.warns(DataWarning) as caught:
        sizes = readable_images(paths, skip_bad=True, what="the test folder")
    assert len(caught) == 1
    assert "skipping 2 unreadable or corrupt image file(s)" in str(caught[0].message)
    assert [p.name for p in sizes] == ["a.png", "b.jpg", "c.bmp"]


def test_a_broken_link_is_reported_like_an_empty_png_not_left_out(hr_folder):
    (hr_folder / "loop.png").symlink_to("loop.png")  # a link to itself: ELOOP when opened
    (hr_folder / "dangling.jpg").symlink_to("nowhere.jpg")
    (hr_folder / "empty.png").write_bytes(b"")
    (hr_folder / "folder.png").mkdir()  # a folder is never an image, whatever its name
    paths = list_images(hr_folder)
    assert {"loop.png", "dangling.jpg", "empty.png"} <= {p.name for p in paths}
    assert "folder.png" not in {p.name for p in paths}
    with pytest.raises(BadImageError) as error:
        readable_images(paths, skip_bad=False, what="the test folder")
    assert "3 unreadable or corrupt image file(s)" in str(error.value)
    assert all(name in str(error.value) for name in ("loop.png", "dangling.jpg", "empty.png"))


def test_skipped_files_are_returned_with_their_reasons(hr_folder):
    (hr_folder / "dangling.png").symlink_to("nowhere.png")
    with pytest.warns(DataWarning):
        found = check_images(list_images(hr_folder), skip_bad=True, what="the test folder")
    assert list(found.bad) == [hr_folder / "dangling.png"]
    assert "No such file" in found.bad[hr_folder / "dangling.png"]
    assert [p.name for p in found.sizes] == ["a.png", "b.jpg", "c.bmp"]


@pytest.mark.parametrize("suffix", [".gif", ".png", ".tif"])
def test_a_file_of_several_frames_gives_its_first_with_a_notice(tmp_path, rng, suffix):
    frames = [rng.integers(0, 256, (6, 5, 3), dtype=np.uint8) for _ in range(3)]
    if suffix == ".gif":  # GIF is a palette format: a gray frame survives it exactly
        frames = [np.repeat(f[..., :1], 3, -1) for f in frames]
    images = [Image.fromarray(f) for f in frames]
    path = tmp_path / f"moving{suffix}"
    images[0].save(path, save_all=True, append_images=images[1:])
    with pytest.warns(DataWarning, match=r"moving.* holds 3 frames .*only its first frame"):
        pixels = decode_rgb(path)
    np.testing.assert_array_equal(pixels, frames[0])


def test_a_single_frame_file_decodes_without_a_notice(tmp_path, rng, recwarn):
    Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(tmp_path / "one.gif")
    decode_rgb(tmp_path / "one.gif")
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]
