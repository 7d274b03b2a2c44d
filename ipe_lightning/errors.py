"""Errors in what the user asked for, and how a failure is told in one line and in a tail.

A :class:`UserError` is a setting, path or file that cannot work (missing data, a scale that is
not super-resolution, a checkpoint that is not there): the entry points print its message alone
and exit 2, where a bug gets its traceback. So does a write the machine refuses (a read-only
folder, a full disk: :func:`find_machine_error`), told by its reason and file. Hydra wraps what a
``_target_`` raises in its own exception (``InstantiationException: Error in call to target
'...':``, which names neither the option nor the problem), so :func:`find_user_error` looks along
the chain of causes, and a failure is told by its :func:`meaningful_cause`.
"""

from __future__ import annotations

import errno
import traceback
from collections.abc import Iterator

TRACEBACK_LINES = 40  # the tail kept in metrics.json: the frames nearest the error
# A write the machine refuses: told in one line like a user error (the remedy is a writable
# folder or free space, not a fix of the code).
MACHINE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT})


class UserError(Exception):
    """A setting, path or file that cannot work; its message names the option to change."""


class SettingError(UserError, ValueError):
    """A config value out of its range (``model.net.encoding.bandwidth=-3``)."""


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and its causes (``raise ... from``, else the error being handled), outermost
    first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        current = current.__cause__ or current.__context__


def find_user_error(error: BaseException) -> UserError | None:
    """``error`` or the first of its causes that is a :class:`UserError`, if any."""
    return next((e for e in causes(error) if isinstance(e, UserError)), None)


def find_machine_error(error: BaseException) -> OSError | None:
    """``error`` or the first of its causes that is the machine refusing a write
    (:data:`MACHINE_ERRNOS`), if any: what a file's writer wraps (logging's "Unable to configure
    handler", torch's "unexpected pos" on a full disk) is told by this cause."""
    return next(
        (e for e in causes(error) if isinstance(e, OSError) and e.errno in MACHINE_ERRNOS), None
    )


def machine_message(error: OSError) -> str:
    """``Permission denied: /runs/x/run.log``: the reason and the file, without errno."""
    reason = error.strerror or str(error)
    return f"{reason}: {error.filename}" if error.filename else reason


def user_message(error: BaseException) -> str | None:
    """What the entry points print alone (exit 2) for ``error``: the message of its
    :class:`UserError`, else the machine's refusal (:func:`find_machine_error`); ``None`` for
    a bug, which keeps its traceback."""
    if (user_error := find_user_error(error)) is not None:
        return str(user_error)
    if (refused := find_machine_error(error)) is not None:
        return machine_message(refused)
    return None


def config_message(error: BaseException) -> str | None:
    """Hydra's own message for a config that does not compose or resolve (an unknown option,
    group or interpolation), as Hydra prints it; ``None`` for any other error."""
    from hydra.errors import CompactHydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, OmegaConfBaseException):
        return str(error)
    if not isinstance(error, CompactHydraException):
        return None
    cause = error.__cause__
    return f"{error}\n{cause}" if isinstance(cause, OmegaConfBaseException) else str(error)


def meaningful_cause(error: BaseException) -> BaseException:
    """The error to tell: the first :class:`UserError` along the chain of causes, else the
    machine's refusal of a write (:func:`find_machine_error`), else the innermost cause under
    Hydra's instantiation wrappers; ``error`` itself when it wraps none."""
    told = find_user_error(error) or find_machine_error(error)
    if told is not None:
        return told
    from hydra.errors import InstantiationException

    seen: set[int] = set()
    current = error
    while isinstance(current, InstantiationException) and id(current) not in seen:
        seen.add(id(current))
        inner = current.__cause__ or current.__context__
        if inner is None:
            break
        current = inner
    return current


def one_line(error: BaseException) -> str:
    """``Type: first line of the message`` of its :func:`meaningful_cause`: what a table, a
    summary line or a log line shows."""
    error = meaningful_cause(error)
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def describe(error: BaseException) -> str:
    """``Type: message`` (the whole message) of its :func:`meaningful_cause`: what
    ``metrics.json`` records as the error (the traceback keeps the whole chain)."""
    error = meaningful_cause(error)
    return f"{type(error).__name__}: {error}"


def traceback_tail(error: BaseException, lines: int = TRACEBACK_LINES) -> str:
    """``error``'s traceback: its header, the last ``lines`` lines of its frames (those nearest the
    error) and its whole message, however long the message is."""
    frames = "".join(traceback.format_tb(error.__traceback__)).rstrip().splitlines()
    message = "".join(traceback.format_exception_only(type(error), error)).rstrip()
    return "\n".join(["Traceback (most recent call last):", *frames[-lines:], message])


class MissingFileError(UserError, FileNotFoundError):
    """A file the config names (``ckpt_path=...``) is not there."""
