"""PyTriton's ``pytriton.constants``: default ports, addresses, timeouts and the PyTriton home directory.

The ports are ``pytriton_lite.config``'s and ``TRITON_CONTEXT_FIELD_NAME`` is the one ``@triton_context`` uses, so
there is one source for each. ``PYTRITON_HOME`` is computed as PyTriton does (``$PYTRITON_HOME``, else
``$XDG_CACHE_HOME/pytriton``, else ``~/.cache/pytriton``); pytriton_lite itself writes nothing there.
``TRITON_PYTHON_BACKEND_INTERPRETER_DIRNAME`` names a directory of PyTriton's workspace that pytriton_lite does
not create (models run in this interpreter); it is kept for code that imports it.
"""

from __future__ import annotations

import os
import pathlib

from pytriton_lite._triton_context import TRITON_CONTEXT_FIELD_NAME
from pytriton_lite.config import DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, DEFAULT_METRICS_PORT

TRITON_LOCAL_IP = "127.0.0.1"
TRITON_PYTHON_BACKEND_INTERPRETER_DIRNAME = "python_backend_interpreter"
DEFAULT_TRITON_STARTUP_TIMEOUT_S = 120
CREATE_TRITON_CLIENT_TIMEOUT_S = 10


def _pytriton_home() -> pathlib.Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    home = os.environ.get("PYTRITON_HOME") or os.path.join(cache, "pytriton")
    return pathlib.Path(os.path.expanduser(os.path.expandvars(home))).resolve().absolute()


PYTRITON_HOME = _pytriton_home()

__all__ = [
    "CREATE_TRITON_CLIENT_TIMEOUT_S",
    "DEFAULT_GRPC_PORT",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_METRICS_PORT",
    "DEFAULT_TRITON_STARTUP_TIMEOUT_S",
    "PYTRITON_HOME",
    "TRITON_CONTEXT_FIELD_NAME",
    "TRITON_LOCAL_IP",
    "TRITON_PYTHON_BACKEND_INTERPRETER_DIRNAME",
]
