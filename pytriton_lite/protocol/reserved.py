"""Triton's reserved parameter names, and the refusal of a forwarded header that would become one.

Triton's parameters extension reserves ``sequence_id``, ``priority``, ``timeout``, ``sequence_start``,
``sequence_end``, ``headers`` and every ``triton_*`` key (tritonclient also refuses ``binary_data_output`` as a
custom parameter). In a request's own parameters the server consumes the first five and ``binary_data_output``
and refuses ``triton_*`` (the codecs do that); a header that matches the forward pattern and carries one of these
names is refused with 400 / INVALID_ARGUMENT instead of being handed to the model as a parameter.
"""

from __future__ import annotations

from pytriton_lite._echo import echo
from pytriton_lite.exceptions import InvalidArgumentError

RESERVED_PARAMETERS = frozenset(
    ("sequence_id", "sequence_start", "sequence_end", "priority", "timeout", "headers", "binary_data_output")
)
RESERVED_PREFIX = "triton_"


def is_reserved(name: str) -> bool:
    """True for a name a forwarded header may not take (compared in lower case: header names have no case)."""
    lowered = name.lower()
    return lowered in RESERVED_PARAMETERS or lowered.startswith(RESERVED_PREFIX)


def reserved_header_error(name: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"header '{echo(name)}' matches the header forward pattern, but its name is reserved for Triton usage "
        "and cannot be passed to the model as a request parameter"
    )


__all__ = ["RESERVED_PARAMETERS", "RESERVED_PREFIX", "is_reserved", "reserved_header_error"]
