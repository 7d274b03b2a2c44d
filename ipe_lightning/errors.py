"""Errors in what the user asked for, and how a failure is told in one line and in a tail.

A :class:`UserError` is a setting, path or file that cannot work (missing data, a scale that is
not super-resolution, a checkpoint that is not there): the entry points print its message alone
and exit 2, where a bug gets its traceback. Hydra wraps what a ``_target_`` raises in its own
exception (``InstantiationException: Error in call to target '...':``, which names neither the
option nor the problem), so :func:`find_user_error` looks along the chain of causes, and a
failure is told by its :func:`meaningful_cause`.
"""

from __future__ import annotations

import traceback

TRACEBACK_LINES = 40  # the tail kept in metrics.json: the frames nearest the error


class UserError(Exception):
    """A setting, path or file that cannot work; its message names the option to change."""


class SettingError(UserError, ValueError):
    """A config value out of its range (``model.net.encoding.bandwidth=-3``)."""


def find_user_error(error: BaseException) -> UserError | None:
    """``error`` or the first of its causes that is a :class:`UserError`, if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def meaningful_cause(error: BaseException) -> BaseException:
    """The error to tell: the first :class:`UserError` along the chain of causes, else the
    innermost cause under Hydra's instantiation wrappers; ``error`` itself when it wraps none."""
    user_error = find_user_error(error)
    if user_error is not None:
        return user_error
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
    """The last ``lines`` lines of ``error``'s formatted traceback (with its causes)."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return "\n".join(text.rstrip().splitlines()[-lines:])


class MissingFileError(UserError, FileNotFoundError):
    """A file the config names (``ckpt_path=...``) is not there."""
