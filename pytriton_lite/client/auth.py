"""Access-token headers for servers started with a ``TritonSecurityConfig`` (PyTriton 0.7)."""

from __future__ import annotations

from typing import Dict, Mapping, Optional

TRITON_ACCESS_HEADER = "triton-access-token"
# Triton's gRPC front end prefixes restricted-protocol header names with this.
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"


def create_auth_headers(access_token: Optional[str], protocol: str = "http") -> Dict[str, str]:
    """Headers (HTTP) or metadata (gRPC) that carry ``access_token``; empty when there is no token."""
    if not access_token:
        return {}
    if protocol.lower() == "grpc":
        return {GRPC_HEADER_PREFIX + TRITON_ACCESS_HEADER: access_token}
    return {TRITON_ACCESS_HEADER: access_token}


def extract_access_token_from_headers(headers: Optional[Mapping[str, str]]) -> Optional[str]:
    """The access token from HTTP headers or gRPC metadata (either spelling, case-insensitive)."""
    if not headers:
        return None
    wanted = (TRITON_ACCESS_HEADER, GRPC_HEADER_PREFIX + TRITON_ACCESS_HEADER)
    for key, value in headers.items():
        if key.lower() in wanted:
            return value
    return None


class AuthPlugin:
    """tritonclient plugin adding the access header to every request a client sends (health, config, infer)."""

    def __init__(self, access_token: str, protocol: str):
        self._headers = create_auth_headers(access_token, protocol)

    def __call__(self, request) -> None:
        request.headers.update(self._headers)


__all__ = ["TRITON_ACCESS_HEADER", "create_auth_headers", "extract_access_token_from_headers", "AuthPlugin"]
