"""Triton's logging extension in the core: the live log settings, applied to Python logging.

``LogSettings`` holds ``log_file``, ``log_info``, ``log_warning``, ``log_error``, ``log_verbose_level`` and
``log_format`` as ``/v2/logging`` and the LogSettings RPC show them, validates an update with Triton's error
texts and applies it to the ``pytriton_lite`` loggers (``pb_utils.Logger`` logs to ``pytriton_lite.pb_utils``):

- the ``pytriton_lite`` logger's level becomes the lowest enabled one (DEBUG when ``log_verbose_level`` > 0,
  Triton's verbose messages being logging's DEBUG); a level switched off between enabled ones (warnings off,
  errors on) is dropped by a filter on each ``pytriton_lite`` logger;
- ``log_format`` ``ISO8601`` gives the handlers pytriton_lite created (``log_file``, the CLI's console)
  Triton's ISO 8601 layout, ``default`` their own again. Handlers of the application are never touched.

Nothing is changed in logging until the first update: a server that is never asked logs as configured.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from typing import Any, Dict, List, Mapping, Optional

from pytriton_lite.exceptions import InvalidArgumentError, UnsupportedError

ROOT_LOGGER = "pytriton_lite"
FORMATS = ("default", "ISO8601")
LOG_FILE_FIXED = "log file location can not be updated through network protocol"
_SWITCHES = {"log_info": logging.INFO, "log_warning": logging.WARNING, "log_error": logging.ERROR}


class _SwitchFilter(logging.Filter):
    """Drops INFO / WARNING / ERROR records whose switch is off (the level handles the rest)."""

    def __init__(self, settings: LogSettings) -> None:
        super().__init__()
        self.settings = settings

    def filter(self, record: logging.LogRecord) -> bool:
        return self.settings.enabled(record.levelno)


class Iso8601Formatter(logging.Formatter):
    """Triton's ISO 8601 layout: ``2024-05-20T20:03:26Z I 3415 file.py:441] message``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        letter = record.levelname[:1] if record.levelno >= logging.INFO else "I"
        text = f"{stamp} {letter} {os.getpid()} {record.filename}:{record.lineno}] {record.getMessage()}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


class LogSettings:
    """The server's log settings; ``update`` validates all values, then applies them together."""

    def __init__(
        self,
        *,
        log_file: str = "",
        log_info: bool = True,
        log_warning: bool = True,
        log_error: bool = True,
        log_verbose_level: int = 0,
        log_format: str = "default",
    ) -> None:
        self.values: Dict[str, Any] = {
            "log_file": str(log_file or ""),
            "log_info": bool(log_info),
            "log_warning": bool(log_warning),
            "log_error": bool(log_error),
            "log_verbose_level": int(log_verbose_level),
            "log_format": log_format,
        }
        self._filter = _SwitchFilter(self)
        self._saved_level: Optional[int] = None  # the package logger's level before the first update

    def view(self) -> Dict[str, Any]:
        """Triton's response: every setting, in Triton's order."""
        return dict(self.values)

    def enabled(self, levelno: int) -> bool:
        if levelno < logging.INFO:
            return int(self.values["log_verbose_level"]) > 0
        if levelno >= logging.CRITICAL:
            return True
        if levelno >= logging.ERROR:
            return bool(self.values["log_error"])
        if levelno >= logging.WARNING:
            return bool(self.values["log_warning"])
        return bool(self.values["log_info"])

    @staticmethod
    def parse(changes: Mapping[str, Any]) -> Dict[str, Any]:
        """The valid new values of ``changes`` (None values are skipped, unknown keys ignored, as Triton)."""
        parsed: Dict[str, Any] = {}
        if changes.get("log_file") is not None:
            raise UnsupportedError(LOG_FILE_FIXED)
        for key in _SWITCHES:
            value = changes.get(key)
            if value is None:
                continue
            if not isinstance(value, bool):
                raise InvalidArgumentError(f"'{key}' must be a boolean, got: {value!r}")
            parsed[key] = value
        level = changes.get("log_verbose_level")
        if level is not None:
            if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < 2**32:
                raise InvalidArgumentError(f"'log_verbose_level' must be an unsigned integer, got: {level!r}")
            parsed["log_verbose_level"] = level
        log_format = changes.get("log_format")
        if log_format is not None:
            if log_format not in FORMATS:
                raise InvalidArgumentError(f"invalid argument for --log_format, got: {log_format}")
            parsed["log_format"] = log_format
        return parsed

    def update(self, changes: Mapping[str, Any]) -> Dict[str, Any]:
        """Validate and apply ``changes``; returns the settings after the update."""
        parsed = self.parse(changes)
        if parsed:
            self.values.update(parsed)
            self.apply()
        return self.view()

    def apply(self) -> None:
        """Make the ``pytriton_lite`` loggers and the owned handlers follow the settings."""
        if int(self.values["log_verbose_level"]) > 0:
            threshold = logging.DEBUG
        else:
            enabled = [level for key, level in _SWITCHES.items() if self.values[key]]
            threshold = min(enabled) if enabled else logging.CRITICAL
        package = logging.getLogger(ROOT_LOGGER)
        if self._saved_level is None:
            self._saved_level = package.level
        package.setLevel(threshold)
        holes = any(not self.values[key] and level > threshold for key, level in _SWITCHES.items())
        for logger in _package_loggers():
            if holes and self._filter not in logger.filters:
                logger.addFilter(self._filter)
            elif not holes and self._filter in logger.filters:
                logger.removeFilter(self._filter)
        iso = self.values["log_format"] == "ISO8601"
        for handler, original in list(_OWNED.items()):
            handler.setFormatter(Iso8601Formatter() if iso else original)

    def release(self) -> None:
        """At stop: give the loggers and handlers back as they were (they outlive the server)."""
        for logger in _package_loggers():
            if self._filter in logger.filters:
                logger.removeFilter(self._filter)
        if self._saved_level is not None:
            logging.getLogger(ROOT_LOGGER).setLevel(self._saved_level)
            self._saved_level = None
            for handler, original in list(_OWNED.items()):
                handler.setFormatter(original)


#: handlers pytriton_lite created (log file, the CLI's console) -> their own formatter; ``log_format`` may
#: change their layout. Weak: a handler removed and dropped leaves the table by itself.
_OWNED: weakref.WeakKeyDictionary[logging.Handler, Optional[logging.Formatter]] = weakref.WeakKeyDictionary()


def own_handler(handler: logging.Handler) -> None:
    """Let ``log_format`` switch ``handler``'s layout (only for handlers pytriton_lite made)."""
    _OWNED.setdefault(handler, handler.formatter)


def _package_loggers() -> List[logging.Logger]:
    manager = logging.Logger.manager
    names = [name for name in list(manager.loggerDict) if name == ROOT_LOGGER or name.startswith(ROOT_LOGGER + ".")]
    loggers = [manager.loggerDict[name] for name in names]
    return [logger for logger in loggers if isinstance(logger, logging.Logger)]


__all__ = ["LogSettings", "Iso8601Formatter", "LOG_FILE_FIXED", "FORMATS", "own_handler"]
