"""Client warnings (PyTriton's ``pytriton.client.warnings``)."""

from __future__ import annotations


class PyTritonWarning(UserWarning):
    """Base of pytriton_lite client warnings."""


class NotSupportedTimeoutWarning(PyTritonWarning):
    """A requested timeout cannot be applied to an operation."""


__all__ = ["PyTritonWarning", "NotSupportedTimeoutWarning"]
