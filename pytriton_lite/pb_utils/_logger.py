"""``pb_utils.Logger``: a model's log lines, on Python logging (logger ``pytriton_lite.pb_utils``).

VERBOSE is logging's DEBUG; each record names the model's file and line, not this module's.
"""

from __future__ import annotations

import enum
import logging

LOGGER = logging.getLogger("pytriton_lite.pb_utils")


class LogLevel(enum.IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2
    VERBOSE = 3


_LEVELS = {
    LogLevel.INFO: logging.INFO,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
    LogLevel.VERBOSE: logging.DEBUG,
}


class Logger:
    """``pb_utils.Logger.log_info("...")``, ``log_warn``, ``log_error``, ``log_verbose``, ``log(msg, level)``."""

    LogLevel = LogLevel
    INFO = LogLevel.INFO
    WARNING = LogLevel.WARNING
    ERROR = LogLevel.ERROR
    VERBOSE = LogLevel.VERBOSE

    @staticmethod
    def log(message: str, level: int = LogLevel.INFO) -> None:
        LOGGER.log(_LEVELS[LogLevel(level)], "%s", message, stacklevel=2)

    @staticmethod
    def log_info(message: str) -> None:
        LOGGER.info("%s", message, stacklevel=2)

    @staticmethod
    def log_warn(message: str) -> None:
        LOGGER.warning("%s", message, stacklevel=2)

    @staticmethod
    def log_error(message: str) -> None:
        LOGGER.error("%s", message, stacklevel=2)

    @staticmethod
    def log_verbose(message: str) -> None:
        LOGGER.debug("%s", message, stacklevel=2)


__all__ = ["LogLevel", "Logger"]
