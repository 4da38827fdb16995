"""Access-token headers for servers started with a ``TritonSecurityConfig`` (PyTriton 0.7's ``client.auth``).

As in PyTriton, ``create_auth_headers`` raises ``ValueError`` for a missing (None or empty) token and for a
protocol other than http/grpc, and ``extract_access_token_from_headers`` raises ``ValueError`` when the HTTP and
gRPC spellings of the header carry different tokens. Unlike PyTriton, header names match case-insensitively
(HTTP header names are case-insensitive; gRPC metadata keys are lowercase).
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

TRITON_ACCESS_HEADER = "triton-access-token"
# Triton's gRPC front end prefixes restricted-protocol header names with this.
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"
_GRPC_ACCESS_HEADER = GRPC_HEADER_PREFIX + TRITON_ACCESS_HEADER
_PROTOCOLS = ("http", "grpc")


def create_auth_headers(access_token: Optional[str], protocol: str = "http") -> Dict[str, str]:
    """The header (HTTP) or metadata entry (gRPC) that carries ``access_token``.

    Raises:
        ValueError: ``access_token`` is None or empty, or ``protocol`` is neither ``"http"`` nor ``"grpc"``.
    """
    if not access_token:
        raise ValueError("access_token cannot be None or empty")
    scheme = protocol.lower() if isinstance(protocol, str) else protocol
    if scheme not in _PROTOCOLS:
        raise ValueError(f"Invalid protocol '{protocol}'. Must be 'http' or 'grpc'")
    return {_GRPC_ACCESS_HEADER if scheme == "grpc" else TRITON_ACCESS_HEADER: access_token}


def extract_access_token_from_headers(headers: Optional[Mapping[str, str]]) -> Optional[str]:
    """The access token in HTTP headers or gRPC metadata (either spelling); None when there is none.

    Raises:
        ValueError: the headers carry two different tokens.
    """
    if not headers:
        return None
    tokens = [value for key, value in headers.items() if key.lower() in (TRITON_ACCESS_HEADER, _GRPC_ACCESS_HEADER)]
    present = [token for token in tokens if token is not None]
    if len(set(present)) > 1:
        raise ValueError(
            f"Conflicting authentication headers found: '{TRITON_ACCESS_HEADER}' and '{_GRPC_ACCESS_HEADER}' "
            "contain different tokens. Please use consistent tokens."
        )
    return next((token for token in present if token), None)


class AuthPlugin:
    """tritonclient plugin adding the access header to every request a client sends (health, config, infer)."""

    def __init__(self, access_token: str, protocol: str):
        self._headers = create_auth_headers(access_token, protocol)

    def __call__(self, request) -> None:
        request.headers.update(self._headers)


__all__ = ["TRITON_ACCESS_HEADER", "create_auth_headers", "extract_access_token_from_headers", "AuthPlugin"]
