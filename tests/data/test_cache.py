"""The decoded cache equals decoding, follows file changes, and survives crashes and races."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ipe_lightning.data.cache import DecodedCache
from ipe_lightning.data.images import decode_rgb


def test_entries_equal_decoding_and_are_read_only_memory_maps(tmp_path, hr_folder):
    cache = DecodedCache(tmp_path / "cache")
    for path in sorted(hr_folder.glob("*.*")):
        if path.suffix in (".png", ".jpg", ".bmp"):
            first, second = cache(path), cache(path)
            np.testing.assert_array_equal(first, decode_rgb(path))
            np.testing.assert_array_equal(second, decode_rgb(path))
            assert isinstance(second, np.memmap) and not second.flags.writeable
            assert cache.entry_path(path).is_file()


@pytest.mark.skipif(sys.platform != "linux", reason="XDG_CACHE_HOME is the Linux convention")
def test_without_a_directory_entries_go_under_the_user_cache_dir(tmp_path, make, rng, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = make.save_png(tmp_path / "x.png", make.random_rgb(rng, 20, 30))
    DecodedCache()(path)
    (entry,) = (tmp_path / "xdg" / "ipe-lightning" / "decoded").glob("*.npy")
    np.testing.assert_array_equal(np.load(entry), decode_rgb(path))


def test_a_changed_file_is_decoded_again(tmp_path, make, rng):
    cache = DecodedCache(tmp_path / "cache")
    path = make.save_png(tmp_path / "x.png", make.random_rgb(rng, 20, 30))
    old_entry = cache.entry_path(path)
    np.testing.assert_array_equal(cache(path), decode_rgb(path))

    changed = make.random_rgb(rng, 20, 30)
    make.save_png(path, changed)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # even on coarse clocks
    assert cache.entry_path(path) != old_entry
    np.testing.assert_array_equal(cache(path), changed)


def test_an_unreadable_entry_is_replaced_by_a_fresh_decode(tmp_path, make, rng):
    cache = DecodedCache(tmp_path / "cache")
    path = make.save_png(tmp_path / "x.png", make.random_rgb(rng, 20, 30))
    cache(path)
    entry = cache.entry_path(path)
    entry.write_bytes(entry.read_bytes()[:200])  # e.g. a copy cut short by a full disk
    np.testing.assert_array_equal(cache(path), decode_rgb(path))


def write_half_then_hang(cache_dir: Path, path: Path, marker: Path) -> None:
    """In a child process: start filling the entry, stop halfway through the array, hang."""
    from ipe_lightning.data import cache as cache_module

    def half_then_hang(stream, array, allow_pickle=False):
        fmt = np.lib.format
        fmt.write_array_header_1_0(stream, fmt.header_data_from_array_1_0(array))
        stream.write(array.tobytes()[: array.nbytes // 2])
        stream.flush()
        marker.write_text("writing")
        time.sleep(60)

    cache_module.np.save = half_then_hang  # this process only
    cache_module.DecodedCache(cache_dir)(path)


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork and SIGKILL")
def test_a_writer_killed_mid_write_leaves_no_entry(tmp_path, make, rng):
    path = make.save_png(tmp_path / "x.png", make.random_rgb(rng, 64, 64))
    cache_dir, marker = tmp_path / "cache", tmp_path / "marker"
    writer = multiprocessing.get_context("fork").Process(
        target=write_half_then_hang, args=(cache_dir, path, marker)
    )
    writer.start()
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert writer.is_alive(), "the writer died before writing"
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.02)
    finally:
        writer.kill()  # SIGKILL: no cleanup handler runs
        writer.join()
    cache = DecodedCache(cache_dir)
    assert not cache.entry_path(path).exists()
    (temp,) = cache_dir.glob("*.tmp")  # only the dead writer's private file is left
    assert 0 < temp.stat().st_size < 64 * 64 * 3

    np.testing.assert_array_equal(cache(path), decode_rgb(path))
    assert cache.remove_stale_temp_files(older_than_s=3600) == []  # still fresh: kept
    os.utime(temp, (time.time() - 7200, time.time() - 7200))
    assert cache.remove_stale_temp_files(older_than_s=3600) == [temp]
    assert list(cache_dir.glob("*.tmp")) == []


DECODES = []


def slow_decode(path: Path) -> np.ndarray:
    DECODES.append(path)  # per process (forked copies)
    time.sleep(0.3)  # long enough that both processes miss the entry and decode
    return decode_rgb(path)


def fill(cache_dir, paths, barrier, results, slot):
    cache = DecodedCache(cache_dir, decode=slow_decode)
    barrier.wait()
    arrays = [bytes(np.asarray(cache(path))) for path in paths]
    results[slot] = (arrays, len(DECODES))


def test_two_processes_filling_the_cache_at_once_agree(tmp_path, make, rng):
    paths = [make.save_png(tmp_path / f"{i}.png", make.random_rgb(rng, 30, 40)) for i in range(3)]
    cache_dir = tmp_path / "cache"
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    with context.Manager() as manager:
        results = manager.dict()
        workers = [
            context.Process(target=fill, args=(cache_dir, paths, barrier, results, slot))
            for slot in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [worker.exitcode for worker in workers] == [0, 0]
        (first, first_decodes), (second, second_decodes) = results[0], results[1]
    assert first_decodes == second_decodes == len(paths)  # both really filled every entry
    expected = [decode_rgb(path).tobytes() for path in paths]
    assert first == expected and second == expected
    cache = DecodedCache(cache_dir)
    for path in paths:
        np.testing.assert_array_equal(cache(path), decode_rgb(path))
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted(
        cache.entry_path(path).name for path in paths
    )


def test_verify_decodes_every_file_once_and_reports_the_truncated_ones(tmp_path, make, rng):
    cache = DecodedCache(tmp_path / "cache")
    good = [make.save_png(tmp_path / f"{i}.png", make.random_rgb(rng, 20, 30)) for i in range(5)]
    cut = make.save_truncated_png(tmp_path / "cut.png", make.random_rgb(rng, 40, 40))
    found = cache.verify([*good[:2], cut, *good[2:]], workers=3)
    assert list(found.sizes) == good and set(found.sizes.values()) == {(20, 30)}
    assert list(found.bad) == [cut] and "image file is truncated" in found.bad[cut]
    for path in good:  # decoded into the cache: later reads only map the entries
        np.testing.assert_array_equal(np.load(cache.entry_path(path)), decode_rgb(path))
    assert not cache.entry_path(cut).exists()


def test_a_failed_cache_write_names_the_entry_and_is_not_a_bad_image(tmp_path, make, rng):
    from ipe_lightning.data.cache import CacheWriteError
    from ipe_lightning.data.crops import TrainingPatches

    path = make.save_png(tmp_path / "x.png", make.random_rgb(rng, 70, 70))
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache directory should be")
    cache = DecodedCache(blocker / "cache")
    with pytest.raises(CacheWriteError) as error:
        cache.verify([path])
    assert str(blocker / "cache") in str(error.value) and "errno" in str(error.value)
    patches = TrainingPatches([path], cache, repeat=1, inp_size=16, sample_q=8)
    with pytest.raises(CacheWriteError, match=r"data\.cache=false"):
        patches[0, 0]  # at training time too: no "could not read training image"
