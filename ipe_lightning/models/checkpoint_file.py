"""Read a checkpoint file without executing code from it, and say what is wrong with one that
cannot be read: one message per file, naming it.

torch's own errors for a bad file name neither the file nor the cause: a 0-byte file is a bare
``EOFError``, a text file an ``IndexError``/``KeyError``/"Unsupported operand" depending on its
first bytes, a truncated archive a miniz error or ``OSError: Invalid argument``, and a
zero-filled file (what some filesystems leave after a crash) either "legacy .tar format" or the
weights-only refusal that also greets a file that really holds code. Here a file is *corrupt*
(:class:`CorruptCheckpointError`: empty, zero-filled, truncated, not a checkpoint) or *unsafe*
(:class:`UnsafeCheckpointError`: a well-formed pickle that imports something other than tensors
and plain containers); a complete file that a newer torch wrote is neither
(:class:`NewerFormatError`: the remedy is a newer torch, not another checkpoint).
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
import zipfile
from typing import Any

import torch

from ipe_lightning.errors import UserError

_ZIP_MAGIC = b"PK\x03\x04"
_GLOBAL_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST"}
_STRING_OPCODES = {"SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "STRING"}


class CorruptCheckpointError(UserError, ValueError):
    """A checkpoint file that is not a complete checkpoint (empty, zero-filled, truncated, or not
    a checkpoint at all). ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path, self.reason = os.fspath(path), reason
        super().__init__(f"cannot read checkpoint {self.path!r}: {reason}")


class UnsafeCheckpointError(UserError, ValueError):
    """A well-formed checkpoint that holds objects other than tensors and plain containers:
    loading it would execute code from the file."""

    def __init__(self, path: str | os.PathLike, imports: list[str], detail: str = "") -> None:
        self.path, self.imports = os.fspath(path), imports
        names = f" ({', '.join(imports)})" if imports else ""
        super().__init__(
            f"refusing to load {self.path!r}: it holds objects other than tensors and plain "
            f"containers{names}, and loading it would execute code from the file"
            + (f" ({detail})" if detail else "")
        )


class CheckpointMismatchError(UserError, ValueError):
    """A readable checkpoint that does not hold what is asked of it: another project's file,
    another model's network, or a training past ``trainer.max_epochs``; the message names the
    file and what it holds."""


class NewerFormatError(UserError, ValueError):
    """A complete checkpoint in a file format newer than this torch reads (written by a newer
    PyTorch): the file is fine, this installation is too old for it."""

    def __init__(self, path: str | os.PathLike, version: str, supported: str) -> None:
        self.path = os.fspath(path)
        super().__init__(
            f"checkpoint {self.path!r} was written by a newer PyTorch (file format version "
            f"{version}; torch {torch.__version__} here reads up to version {supported}): "
            "upgrade torch where it is read (pip install -U torch), or read it where it was written"
        )


# torch's archive reader (caffe2 inline_container.cc): "Attempted to read a PyTorch file with
# version 99, but the maximum supported version for reading is 10. ..."
_NEWER_FORMAT = re.compile(
    r"PyTorch file with version (\d+), but the maximum supported version[^\d]*(\d+)"
)


def _pickle_imports(data: bytes) -> list[str] | None:
    """The ``module.name`` globals that the pickles at the start of ``data`` import (torch's
    legacy format is a few pickles in a row, the objects in the fourth); ``None`` if ``data``
    does not start with a complete pickle."""
    stream, imports = io.BytesIO(data), []
    for count in range(4):
        strings: list[str] = []
        try:
            for opcode, argument, _ in pickletools.genops(stream):
                if opcode.name in _STRING_OPCODES:
                    strings.append(str(argument))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    imports.append(f"{strings[-2]}.{strings[-1]}")
                elif opcode.name in _GLOBAL_OPCODES and argument:
                    imports.append(str(argument).replace(" ", "."))
        except Exception:  # a parse failure: no further complete pickle
            return imports if count else None
        if stream.tell() >= len(data):
            break
    return imports


def _allowed(name: str) -> bool:
    """Whether torch's weights-only unpickler accepts the global ``name`` (tensors, storages,
    ``collections.OrderedDict`` ...)."""
    try:
        from torch import _weights_only_unpickler as unpickler

        allowed = set(unpickler._get_allowed_globals()) | set(unpickler._get_user_allowed_globals())
    except Exception:  # a private API: without it, name every import
        return False
    return name in allowed


def _main_pickle(path: str | os.PathLike, head: bytes) -> bytes | None:
    """The pickle that holds the checkpoint's objects: ``data.pkl`` of a zip archive, or the file
    itself (torch's legacy format and plain pickles)."""
    if not head.startswith(_ZIP_MAGIC):
        with open(path, "rb") as handle:
            return handle.read()
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            return archive.read(name) if name else None
    except (zipfile.BadZipFile, OSError, EOFError):
        return None


def _corruption(path: str | os.PathLike, error: BaseException) -> str:
    """Why the file at ``path`` is not a complete checkpoint, in words."""
    size = os.path.getsize(path)
    if size == 0:
        return "the file is empty (0 bytes): a save that was interrupted or a full disk"
    with open(path, "rb") as handle:
        head = handle.read(4096)
        zero = not head.strip(b"\0")
        while zero and (chunk := handle.read(1 << 20)):
            zero = not chunk.strip(b"\0")
    if zero:
        return f"the file holds only zero bytes ({size} bytes): a save lost in a crash"
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except zipfile.BadZipFile:
            return (
                f"the archive is truncated or damaged ({size} bytes, no complete index): "
                "a save that was interrupted or a full disk"
            )
        if damaged:
            return f"the archive is damaged: {damaged!r} fails its checksum"
        return f"the archive is damaged ({type(error).__name__}: {error})"
    return f"not a PyTorch checkpoint ({size} bytes, starting {head[:16]!r})"


def load_weights_only(path: str | os.PathLike) -> Any:
    """``torch.load`` that never executes code from the file; a file that cannot be read raises
    :class:`CorruptCheckpointError` or :class:`UnsafeCheckpointError`, and one of a newer torch
    :class:`NewerFormatError`, each naming it."""
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise CorruptCheckpointError(path, _corruption(path, EOFError()))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as error:
        if newer := _NEWER_FORMAT.search(str(error)):
            raise NewerFormatError(path, *newer.groups()) from error
        if isinstance(error, pickle.UnpicklingError):
            with open(path, "rb") as handle:
                head = handle.read(len(_ZIP_MAGIC))
            data = _main_pickle(path, head)
            imports = _pickle_imports(data) if data else None
            refused = [name for name in imports or [] if not _allowed(name)]
            if refused:
                raise UnsafeCheckpointError(path, refused) from error
        raise CorruptCheckpointError(path, _corruption(path, error)) from error


def key_differences(
    missing: list[str], unexpected: list[str], resized: list[str], shown: int = 3
) -> str:
    """``missing (2): a, b; unexpected (1): c``: how a state dict differs from a network's, the
    first ``shown`` keys of each kind."""
    return "; ".join(
        f"{what} ({len(keys)}): {', '.join(keys[:shown])}{', ...' if len(keys) > shown else ''}"
        for what, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("of another shape", resized),
        )
        if keys
    )


def load_error_differences(message: str) -> str:
    """:func:`key_differences` read from torch's ``load_state_dict`` error (``Missing key(s) in
    state_dict: "a", "b". Unexpected key(s) ...``); ``""`` when ``message`` lists none."""

    def keys(kind: str) -> list[str]:
        found = re.search(rf"{kind} key\(s\) in state_dict: (.*?)\.\s*$", message, re.MULTILINE)
        return sorted(re.findall(r'"([^"]+)"', found.group(1))) if found else []

    resized = sorted(re.findall(r"size mismatch for ([^:\s]+):", message))
    return key_differences(keys("Missing"), keys("Unexpected"), resized)
