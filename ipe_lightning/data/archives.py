"""Dataset archives (zip, tar) unpacked so that a set is either whole in its place or not there.

An archive is extracted into a hidden folder beside its destination (same filesystem), checked to
hold the folder it should, and only then is that folder renamed into place (``os.replace``, atomic
on POSIX). A kill, a corrupt member or a full disk leaves at most the hidden folder, which the next
run removes; never a half-filled ``DIV2K_train_HR`` that looks complete.
"""

from __future__ import annotations

import errno
import os
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ipe_lightning.errors import UserError


class CorruptArchiveError(UserError):
    """An archive that cannot be read whole, or does not hold what it should."""


class DiskFullError(UserError):
    """No space left where a download or an extraction writes."""


# What a damaged archive raises while it is read: a bad CRC, a cut-off member, a broken header.
_CORRUPT = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error)


def staging_dir(target: Path) -> Path:
    """The hidden folder beside ``target`` where its archive is extracted first."""
    return target.parent / f".{target.name}.extracting"


def _check_names(archive: Path, names: list[str]) -> None:
    for name in names:
        if name.startswith("/") or ".." in PurePosixPath(name).parts:
            raise CorruptArchiveError(
                f"{archive} names a file outside its folder ({name!r}): not extracted"
            )


def _unpack(archive: Path, into: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            _check_names(archive, bundle.namelist())
            bundle.extractall(into)  # reads every member: a bad CRC raises here
        return
    if not tarfile.is_tarfile(archive):
        raise CorruptArchiveError(f"{archive} is corrupt: neither a zip nor a tar archive")
    with tarfile.open(archive) as bundle:
        members = bundle.getmembers()  # reads every header: a cut-off archive raises here
        _check_names(archive, [member.name for member in members])
        if odd := [m.name for m in members if not (m.isfile() or m.isdir())]:
            raise CorruptArchiveError(
                f"{archive} holds links or devices ({odd[:3]}): not extracted"
            )
        # Python >= 3.11.4 filters members itself as well (permissions, ownership)
        safety = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        bundle.extractall(into, members=members, **safety)


def extract_folder(archive: Path, inner: str, target: Path) -> Path:
    """Extract ``archive`` and move its folder ``inner`` (``DIV2K_train_LR_bicubic/X2``) to
    ``target``; returns ``target``. ``target`` must not exist yet.

    A corrupt archive raises :class:`CorruptArchiveError`, a full disk :class:`DiskFullError`;
    either way nothing is left at ``target`` and the staging folder is removed.
    """
    staging = staging_dir(target)
    shutil.rmtree(staging, ignore_errors=True)  # a run killed while extracting
    staging.mkdir(parents=True)
    try:
        _unpack(archive, staging)
        found = staging / inner
        if not found.is_dir():
            top = sorted(p.name for p in staging.iterdir())
            raise CorruptArchiveError(
                f"{archive} does not hold the folder {inner}/ (it holds {top or 'nothing'}): "
                "is it the right file?"
            )
        os.replace(found, target)
    except _CORRUPT as err:
        raise CorruptArchiveError(f"{archive} is corrupt: {type(err).__name__}: {err}") from err
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise DiskFullError(
                f"no space left on the device while extracting {archive.name} into "
                f"{target.parent}: free some space, or download into another --root"
            ) from err
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
