"""Access-token and API-key headers for servers started with a ``TritonSecurityConfig`` (PyTriton 0.7's
``client.auth``, plus API keys).

As in PyTriton, ``create_auth_headers`` raises ``ValueError`` for a missing (None or empty) token and for a
protocol other than http/grpc, and ``extract_access_token_from_headers`` raises ``ValueError`` when the HTTP and
gRPC spellings of the header carry different tokens. Unlike PyTriton, header names match case-insensitively
(HTTP header names are case-insensitive; gRPC metadata keys are lowercase).

An API key travels as ``Authorization: Bearer <key>`` on both protocols (gRPC: ``authorization`` metadata), which
every pytriton_lite server with API keys accepts whatever its ``api_key_header`` is.
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
    scheme = _scheme(protocol)
    return {_GRPC_ACCESS_HEADER if scheme == "grpc" else TRITON_ACCESS_HEADER: access_token}


def create_api_key_headers(api_key: Optional[str], protocol: str = "http") -> Dict[str, str]:
    """The ``Authorization: Bearer`` header (HTTP) or ``authorization`` metadata entry (gRPC) carrying ``api_key``.

    Raises:
        ValueError: ``api_key`` is None, empty or has a character a header cannot carry, or ``protocol`` is
            neither ``"http"`` nor ``"grpc"``.
    """
    if not api_key or not isinstance(api_key, str):
        raise ValueError("api_key cannot be None or empty")
    if not all("!" <= ch <= "~" for ch in api_key):
        raise ValueError("api_key must be printable ASCII without spaces")
    scheme = _scheme(protocol)
    return {"authorization" if scheme == "grpc" else "Authorization": f"Bearer {api_key}"}


def auth_headers(access_token: Optional[str], api_key: Optional[str], protocol: str) -> Dict[str, str]:
    """The headers for whichever of ``access_token`` / ``api_key`` is not None (ValueError as above)."""
    headers: Dict[str, str] = {}
    if access_token is not None:
        headers.update(create_auth_headers(access_token, protocol))
    if api_key is not None:
        headers.update(create_api_key_headers(api_key, protocol))
    return headers


def _scheme(protocol: str) -> str:
    scheme = protocol.lower() if isinstance(protocol, str) else protocol
    if scheme not in _PROTOCOLS:
        raise ValueError(f"Invalid protocol '{protocol}'. Must be 'http' or 'grpc'")
    return scheme


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
    """tritonclient plugin adding the access-token and/or API-key header to every request a client sends."""

    def __init__(self, access_token: Optional[str], protocol: str, *, api_key: Optional[str] = None):
        if access_token is None and api_key is None:
            raise ValueError("access_token cannot be None or empty")
        self._headers = auth_headers(access_token, api_key, protocol)

    def __call__(self, request) -> None:
        request.headers.update(self._headers)


__all__ = [
    "TRITON_ACCESS_HEADER",
    "auth_headers",
    "create_api_key_headers",
    "create_auth_headers",
    "extract_access_token_from_headers",
    "AuthPlugin",
]
