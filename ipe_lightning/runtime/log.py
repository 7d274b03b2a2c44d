"""The package's own messages (results, resume, W&B notices, progress lines) go through the
``ipe_lightning`` logger, so a job's log file holds what its console showed.

Under Hydra, ``conf/config.yaml`` (``hydra.job_logging``) gives this logger a plain console
handler and Hydra's job log file (``<run dir>/run.log``). Outside a Hydra job (a notebook, a test
calling ``tasks.run``) nothing configures logging, and Python's last resort would drop every
message below WARNING: :class:`ConsoleWhenUnconfigured` prints them instead.
"""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "ipe_lightning"


class ConsoleWhenUnconfigured(logging.Handler):
    """Writes the bare message to stdout, but only while neither this logger nor the root has
    another handler (Hydra's job logging replaces this one when it configures the logger)."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(LOGGER_NAME)
        if any(h is not self for h in logger.handlers) or logging.getLogger().handlers:
            return
        try:
            sys.stdout.write(record.getMessage() + "\n")
            sys.stdout.flush()
        except Exception:  # logging must never break the job
            self.handleError(record)


def get_logger(name: str = LOGGER_NAME) -> logging.Logger:
    """The package logger (or a child of it, ``ipe_lightning.<module>``), ready to print."""
    root = logging.getLogger(LOGGER_NAME)
    if root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    if not root.handlers:
        root.addHandler(ConsoleWhenUnconfigured())
    return logging.getLogger(name)
