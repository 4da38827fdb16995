"""Restricted endpoints: Triton's API groups, the two flag syntaxes that restrict them, and the access policy.

Triton restricts groups of endpoints (``config.TRITON_API_GROUPS``) to clients that send a header with a
given value. Both flags share one shape, parsed here once:

``--http-restricted-api``        ``"<group>[,<group>...]:<header>=<value>"``
``--grpc-restricted-protocol``   the same; the gRPC metadata key is ``triton-grpc-protocol-<header>``

Several rules may be given as a list or joined with ``;``. The text before the first ``:`` names the
groups (empty names are skipped), the header name is matched case-insensitively (stored lower-cased) and the
value exactly; a group named again takes the later rule. The result is an ``AccessPolicy``: a read-only
mapping ``group -> (header, value)`` that each front end checks against its own request headers.

Pure: no sockets, no threads. HTTP routes know their group in ``frontends.http``; the gRPC RPCs' groups are
``GRPC_METHOD_GROUPS`` below.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Dict, Iterator, Mapping, NamedTuple, Optional, Pattern, Sequence, Tuple, Union

from pytriton_lite.config import VALID_TRITON_ENDPOINTS
from pytriton_lite.exceptions import PyTritonError

Spec = Union[None, str, Sequence[str]]
Rule = Tuple[str, str]  # (header name, lower-cased; required value)

GRPC_HEADER_PREFIX = "triton-grpc-protocol-"
HTTP_RESTRICTED = "This API is restricted, expecting header '{}'"  # answered with 403
GRPC_RESTRICTED = "This protocol is restricted, expecting header '{}'"  # answered with UNAVAILABLE

# Triton's group of every GRPCInferenceService RPC (for --grpc-restricted-protocol).
GRPC_METHOD_GROUPS: Mapping[str, str] = MappingProxyType(
    {
        "ServerLive": "health",
        "ServerReady": "health",
        "ModelReady": "health",
        "ServerMetadata": "metadata",
        "ModelMetadata": "metadata",
        "ModelInfer": "inference",
        "ModelStreamInfer": "inference",
        "ModelConfig": "model-config",
        "ModelStatistics": "statistics",
        "RepositoryIndex": "model-repository",
        "RepositoryModelLoad": "model-repository",
        "RepositoryModelUnload": "model-repository",
        "SystemSharedMemoryStatus": "shared-memory",
        "SystemSharedMemoryRegister": "shared-memory",
        "SystemSharedMemoryUnregister": "shared-memory",
        "CudaSharedMemoryStatus": "shared-memory",
        "CudaSharedMemoryRegister": "shared-memory",
        "CudaSharedMemoryUnregister": "shared-memory",
        "TraceSetting": "trace",
        "LogSettings": "logging",
    }
)


class AccessPolicy(Mapping[str, Rule]):
    """Which groups need which header: ``group -> (header, value)``; immutable. Empty = nothing restricted.

    Equal to any mapping with the same rules (``policy == {"statistics": ("key", "s3cret")}``).
    """

    __slots__ = ("_rules", "_refusal")

    def __init__(self, rules: Optional[Mapping[str, Rule]] = None, refusal: str = HTTP_RESTRICTED) -> None:
        self._rules: Mapping[str, Rule] = MappingProxyType(dict(rules or {}))
        self._refusal = refusal

    def __getitem__(self, group: str) -> Rule:
        return self._rules[group]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "_refusal"):  # set once, in __init__
            raise AttributeError(f"{type(self).__name__} is immutable")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self._rules)!r})"

    def refusal(self, group: str) -> str:
        """The message a request without ``group``'s header is refused with (Triton's wording)."""
        return self._refusal.format(self._rules[group][0])


class _Syntax(NamedTuple):
    flag: str  # "http restricted api": the error messages' name of the flag
    group_word: str  # "API group" / "protocol group"
    header_prefix: str
    refusal: str


_HTTP = _Syntax("http restricted api", "API group", "", HTTP_RESTRICTED)
_GRPC = _Syntax("grpc restricted protocol", "protocol group", GRPC_HEADER_PREFIX, GRPC_RESTRICTED)


def _rules_of(part: str, syntax: _Syntax) -> Iterator[Tuple[str, Rule]]:
    groups, colon, pair = part.partition(":")
    key, equals, value = pair.partition("=")
    if not colon or not equals or not key.strip():
        raise PyTritonError(f"Invalid {syntax.flag} specification: {part!r}")
    rule = (syntax.header_prefix + key.strip().lower(), value.strip())
    for group in (g.strip() for g in groups.split(",")):
        if not group:
            continue
        if group not in VALID_TRITON_ENDPOINTS:
            raise PyTritonError(f"Unknown {syntax.group_word} {group!r} in {syntax.flag} {part!r}")
        yield group, rule


def _parse(spec: Spec, syntax: _Syntax) -> AccessPolicy:
    items = [] if not spec else [spec] if isinstance(spec, str) else list(spec)
    rules: Dict[str, Rule] = {}
    for item in items:
        for part in str(item).split(";"):
            if part.strip():
                rules.update(_rules_of(part, syntax))
    return AccessPolicy(rules, syntax.refusal)


def parse_http_restricted_api(spec: Spec) -> AccessPolicy:
    """``--http-restricted-api`` (one spec, ``;``-joined specs or a list of them) -> its ``AccessPolicy``."""
    return _parse(spec, _HTTP)


def parse_grpc_restricted_protocol(spec: Spec) -> AccessPolicy:
    """``--grpc-restricted-protocol`` -> its ``AccessPolicy``; headers carry the ``triton-grpc-protocol-`` prefix."""
    return _parse(spec, _GRPC)


def compile_forward_pattern(pattern: Optional[str]) -> Optional[Pattern[str]]:
    """``--http-header-forward-pattern`` / ``--grpc-header-forward-pattern`` as Triton reads them.

    Triton matches header names case-insensitively (HTTP header names are; gRPC metadata keys arrive lower-case)
    and, with RE2's syntax, a leading ``(?-i)`` asks for a case-sensitive match. Python's ``re`` has no global
    ``(?-i)``, so it is taken off here and the pattern compiled without IGNORECASE. A pattern ``re`` cannot read
    is refused at start with the reason.
    """
    if not pattern:
        return None
    flags = int(re.IGNORECASE)
    body = pattern
    if body.startswith("(?-i)"):
        body, flags = body[len("(?-i)") :], 0
    try:
        return re.compile(body, flags)
    except re.error as exc:
        raise PyTritonError(f"Invalid header forward pattern {pattern!r}: {exc}") from None


__all__ = [
    "AccessPolicy",
    "compile_forward_pattern",
    "GRPC_METHOD_GROUPS",
    "GRPC_HEADER_PREFIX",
    "GRPC_RESTRICTED",
    "HTTP_RESTRICTED",
    "parse_grpc_restricted_protocol",
    "parse_http_restricted_api",
]
