"""The colour photos that ship inside scikit-image: the embedded default needs no download.

They are read from the installed ``skimage/data`` folder (``importlib.resources``), never fetched.

Fixed split (by photo, so no photo is on both sides):

======== ==================================================================================
training ``astronaut``, ``coffee``, ``hubble_deep_field``, ``ihc``, ``motorcycle_left``,
         ``motorcycle_right``, ``retina`` (the stereo pair stays together: its two views
         are nearly the same picture)
held-out ``chelsea``, ``rocket``
======== ==================================================================================

The held-out photos are the ``sample`` evaluation set and also the validation photos of
``data=sample`` (there are too few photos for a third split; validation there only tracks
training, it selects nothing).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

TRAIN_PHOTOS = (
    "astronaut",
    "coffee",
    "hubble_deep_field",
    "ihc",
    "motorcycle_left",
    "motorcycle_right",
    "retina",
)
HELD_OUT_PHOTOS = ("chelsea", "rocket")


def photo_path(name: str) -> Path:
    """The file of bundled photo ``name`` (``.png`` or ``.jpg``) in the installed scikit-image."""
    folder = importlib.resources.files("skimage") / "data"
    for suffix in (".png", ".jpg"):
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            # skimage is installed as plain files (it ships compiled extensions, never a zip).
            return Path(str(candidate))
    raise FileNotFoundError(
        f"bundled photo {name!r} not found in {folder}; scikit-image's data files are missing "
        "(reinstall scikit-image)"
    )


def train_photos() -> list[Path]:
    """The training photos, in the order of :data:`TRAIN_PHOTOS`."""
    return [photo_path(name) for name in TRAIN_PHOTOS]


def held_out_photos() -> list[Path]:
    """The held-out photos, in the order of :data:`HELD_OUT_PHOTOS`."""
    return [photo_path(name) for name in HELD_OUT_PHOTOS]
