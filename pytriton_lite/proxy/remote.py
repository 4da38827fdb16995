"""PyTriton's ``RemoteTriton``, which pytriton_lite refuses with a typed error at construction.

PyTriton's remote mode binds callables of one process into a ``tritonserver`` started by another: the server's
python-backend stubs reach the binding process through IPC sockets in a shared workspace. pytriton_lite has no
stubs and no workspace; a model's callable runs in the process whose ``Triton`` serves it. Attaching models of
another process would take a registration protocol and a request-forwarding proxy that this project does not
have, so ``RemoteTriton`` fails at once and says what to do instead, rather than appearing to work.
"""

from __future__ import annotations

from typing import Any, Optional

from pytriton_lite.exceptions import PyTritonInvalidOperationError

REMOTE_MODE_UNSUPPORTED = (
    "RemoteTriton (PyTriton's remote mode) is not supported by pytriton_lite: a model's callable is served by the "
    "Triton of the process that binds it, and a running server cannot take models from another process. Bind the "
    "models in the process that defines them (one Triton serves many models: call bind() for each), or give the "
    "server a model repository (python -m pytriton_lite serve --model-repository=...) whose python backend runs "
    "model.py inside the server."
)


class RemoteTritonNotSupportedError(PyTritonInvalidOperationError):
    """``RemoteTriton`` was used: pytriton_lite has no remote mode (see ``REMOTE_MODE_UNSUPPORTED``)."""


class RemoteTriton:
    """PyTriton's ``RemoteTriton(url, workspace=None, access_token=None)``: refused at construction."""

    def __init__(self, url: str, workspace: Any = None, access_token: Optional[str] = None) -> None:
        raise RemoteTritonNotSupportedError(f"{REMOTE_MODE_UNSUPPORTED} (RemoteTriton(url={url!r}) was called)")


__all__ = ["RemoteTriton", "RemoteTritonNotSupportedError", "REMOTE_MODE_UNSUPPORTED"]
