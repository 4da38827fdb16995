"""What the sync and asyncio readiness waits share: polling, the version-policy fast failure, the timeout error.

A model the server does not know yet is waited for (as PyTriton does: it may be bound or loaded any moment).
The wait fails early only where waiting cannot help: the server serves the model with a ``specific`` version
policy that leaves out the requested version. When the wait runs out, the error names the model and lists the
models the server knows (its repository index), so a misspelled name is plain to see.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

from tritonclient.utils import InferenceServerException

from pytriton_lite.client.exceptions import (
    PyTritonClientError,
    PyTritonClientModelUnavailableError,
    PyTritonClientTimeoutError,
)

LATEST_MODEL_VERSION = "<latest>"

# Readiness polling starts fast (a server that is just starting is usually ready within milliseconds)
# and backs off to the period PyTriton used.
POLL_FIRST_S = 0.01
POLL_MAX_S = 1.0
# A gRPC deadline must be positive; this is the least we ask for once a wait's budget is used up.
MIN_TIMEOUT_S = 0.001
# The repository-index call that explains a timed-out wait gets this long (the wait's own budget is spent).
DIAGNOSTIC_TIMEOUT_S = 2.0

IndexEntry = Tuple[str, str, str, str]  # name, version ("" when the index gives none), state, reason


class ModelNotFoundTimeoutError(PyTritonClientTimeoutError, PyTritonClientModelUnavailableError):
    """The wait for a model ran out and the server does not know the model (or that version of it).

    A ``PyTritonClientTimeoutError`` as in PyTriton, and a ``PyTritonClientModelUnavailableError`` as well.
    """


class Poller:
    """Deadline (optional) and delays of one polling loop: a fixed period, or a back-off from 10 ms to 1 s."""

    def __init__(self, timeout_s: Optional[float], period_s: Optional[float] = None):
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._fixed = period_s is not None
        self._period = POLL_FIRST_S if period_s is None else max(float(period_s), MIN_TIMEOUT_S)

    def remaining(self) -> Optional[float]:
        """Seconds left (None: no deadline)."""
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def next_delay(self) -> Optional[float]:
        """How long to sleep before the next poll; None once the deadline has passed."""
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            return None
        delay = self._period if remaining is None else min(self._period, remaining)
        if not self._fixed:
            self._period = min(self._period * 2, POLL_MAX_S)
        return delay


def version_policy_error(config: Dict[str, Any], model_name: str, model_version: str) -> Optional[PyTritonClientError]:
    """The error to raise at once when the served config's version policy can never serve ``model_version``.

    Only a ``specific`` policy rules a version out for good: under ``all`` or ``latest`` a version can still be
    added (bound, or put into the repository) while the client waits.
    """
    specific = (config.get("version_policy") or {}).get("specific")
    if not model_version or specific is None:
        return None
    versions = [str(v) for v in specific.get("versions", [])]
    if str(model_version) in versions:
        return None
    return PyTritonClientModelUnavailableError(
        f"Model {model_name!r} is served with version_policy specific {{versions: [{', '.join(versions)}]}}; "
        f"version {model_version} is not one of them, so it cannot become ready."
    )


def index_entries(index: Any) -> List[IndexEntry]:
    """(name, version, state, reason) of every entry of a repository index (tritonclient.http list or gRPC proto)."""
    if isinstance(index, list):
        return [
            (str(m.get("name", "")), str(m.get("version") or ""), str(m.get("state") or ""), str(m.get("reason") or ""))
            for m in index
        ]
    return [(m.name, m.version, m.state, m.reason) for m in getattr(index, "models", [])]


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, InferenceServerException):
        return exc.message() or str(exc)
    return f"{type(exc).__name__}: {exc}"


def _describe_versions(entries: List[IndexEntry]) -> str:
    parts = []
    for _, version, state, reason in sorted(entries, key=lambda e: (len(e[1]), e[1])):
        text = f"{version or '(no version)'}: {state or 'UNKNOWN'}"
        parts.append(f"{text} ({reason})" if reason else text)
    return ", ".join(parts)


def model_wait_timeout(
    model_name: str,
    model_version: str,
    timeout_s: float,
    entries: Optional[List[IndexEntry]],
    index_error: Optional[str] = None,
) -> PyTritonClientError:
    """The error for a wait that ran out, explained by the server's repository index (when it could be read)."""
    message = f"Waiting for model {model_name}/{model_version or LATEST_MODEL_VERSION} to be ready timed out "
    message += f"after {timeout_s} s."
    if entries is None:
        return PyTritonClientTimeoutError(f"{message} The server's model list could not be read: {index_error}")
    names = sorted({name for name, _, _, _ in entries})
    if model_name not in names:
        known = ", ".join(repr(name) for name in names) if names else "none"
        return ModelNotFoundTimeoutError(
            f"{message} The server does not know model {model_name!r}; the models it knows: {known}."
        )
    own = [entry for entry in entries if entry[0] == model_name]
    versions = _describe_versions(own)
    if model_version and model_version not in {version for _, version, _, _ in own}:
        return ModelNotFoundTimeoutError(
            f"{message} The server knows model {model_name!r} (versions {versions}) but not version {model_version}."
        )
    return PyTritonClientTimeoutError(f"{message} The server knows model {model_name!r} (versions {versions}).")
