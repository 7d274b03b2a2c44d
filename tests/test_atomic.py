"""Files replaced whole: the old content or the new, never half, with the umask's permissions."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from ipe_lightning.atomic import atomic_open, leftover_temporaries, write_text_atomic


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test (and restore it)."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_written_file_has_the_permissions_the_umask_gives(tmp_path, umask, mask, expected):
    umask(mask)
    write_text_atomic(tmp_path / "table.md", "| a |\n")
    assert mode(tmp_path / "table.md") == expected


def test_a_write_that_fails_leaves_the_old_content_and_no_temporary_file(tmp_path):
    path = tmp_path / "report.txt"
    write_text_atomic(path, "old")
    with pytest.raises(OSError, match="No space"), atomic_open(path) as handle:
        handle.write("new, half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]


def test_the_replaced_file_is_kept_only_once_the_new_one_is_complete(tmp_path):
    path, previous = tmp_path / "last.ckpt", tmp_path / "last.prev.ckpt"
    write_text_atomic(path, "one")
    with pytest.raises(RuntimeError), atomic_open(path, previous=previous) as handle:
        handle.write("two, half")
        raise RuntimeError("killed")
    assert path.read_text() == "one" and not previous.exists()
    with atomic_open(path, previous=previous) as handle:
        handle.write("two")
    assert (path.read_text(), previous.read_text()) == ("two", "one")


def test_a_temporary_file_lives_beside_its_destination_and_is_found_after_a_kill(tmp_path):
    with atomic_open(tmp_path / "last.ckpt", "wb"):
        (temporary,) = leftover_temporaries(tmp_path, "*.ckpt")  # what a kill here leaves
        assert temporary.parent == tmp_path and temporary.name.startswith(".last.ckpt.")
    assert leftover_temporaries(tmp_path) == []
