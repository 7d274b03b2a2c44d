"""Archives are extracted beside their place and renamed into it, and unsafe members are refused."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from ipe_lightning.data.archives import CorruptArchiveError, extract_folder, staging_dir


def write_zip(path, files):
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    return path


def test_the_inner_folder_is_moved_into_place_and_the_rest_dropped(tmp_path):
    archive = write_zip(
        tmp_path / "DIV2K_valid_LR_bicubic_X2.zip",
        {"DIV2K_valid_LR_bicubic/X2/0801x2.png": b"lr", "readme.txt": b"other"},
    )
    target = tmp_path / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X2"
    assert extract_folder(archive, "DIV2K_valid_LR_bicubic/X2", target) == target
    assert (target / "0801x2.png").read_bytes() == b"lr"
    assert not staging_dir(target).exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["X2"]


def test_a_staging_folder_left_by_a_killed_run_is_replaced(tmp_path):
    archive = write_zip(tmp_path / "a.zip", {"benchmark/Set5/HR/baby.png": b"hr"})
    target = tmp_path / "benchmark"
    (staging_dir(target) / "benchmark" / "Set5").mkdir(parents=True)  # half of an earlier run
    (staging_dir(target) / "benchmark" / "stale.png").write_bytes(b"old")
    extract_folder(archive, "benchmark", target)
    assert sorted(p.name for p in target.iterdir()) == ["Set5"]


def test_a_member_outside_the_folder_is_refused(tmp_path):
    archive = write_zip(tmp_path / "evil.zip", {"benchmark/../../evil.txt": b"x"})
    with pytest.raises(CorruptArchiveError, match="outside its folder"):
        extract_folder(archive, "benchmark", tmp_path / "out" / "benchmark")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "benchmark").exists()


def test_a_link_in_a_tar_is_refused(tmp_path):
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as bundle:
        info = tarfile.TarInfo("benchmark/Set5/HR/baby.png")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        bundle.addfile(info, io.BytesIO())
    with pytest.raises(CorruptArchiveError, match="links or devices"):
        extract_folder(archive, "benchmark", tmp_path / "benchmark")
    assert not (tmp_path / "benchmark").exists()
