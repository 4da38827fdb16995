"""Restricted endpoints: Triton's API groups, the two flag syntaxes that restrict them, and the access policy.

Triton restricts groups of endpoints (``config.TRITON_API_GROUPS``) to clients that send a header with a
given value. Both flags share one shape, parsed here once:

``--http-restricted-api``        ``"<group>[,<group>...]:<header>=<value>"``
``--grpc-restricted-protocol``   the same; the gRPC metadata key is ``triton-grpc-protocol-<header>``

Several rules may be given as a list or joined with ``;``. The text before the first ``:`` names the
groups (empty names are skipped), the header name is matched case-insensitively (stored lower-cased) and the
value exactly; a group named again takes the later rule. The result is an ``AccessPolicy``: a read-only
mapping ``group -> (header, value)`` that each front end checks against its own request headers.

API keys (``ApiKeys``) are a second, independent check: a request to a guarded group must carry one of the
server's keys as ``Authorization: Bearer <key>`` or in the key header (``X-API-Key`` by default; gRPC: the same
names as lower-case metadata). Missing -> 401 / UNAUTHENTICATED with ``WWW-Authenticate``; wrong -> 403 /
PERMISSION_DENIED. Keys and tokens are compared as SHA-256 digests with ``hmac.compare_digest`` (constant time,
every key tried), so neither a key's content nor its length shows in the answer time.

Pure: no sockets, no threads. HTTP routes know their group in ``frontends.http``; the gRPC RPCs' groups are
``GRPC_METHOD_GROUPS`` below.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import pathlib
import re
from types import MappingProxyType
from typing import (
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Pattern,
    Sequence,
    Tuple,
    Union,
)

from pytriton_lite.config import TRITON_API_GROUPS, VALID_TRITON_ENDPOINTS
from pytriton_lite.exceptions import InferenceError, PyTritonError, PyTritonValidationError

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


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


def same_secret(got: Optional[str], want: str) -> bool:
    """``got == want`` in constant time (digests compared, so the length does not show either)."""
    return got is not None and hmac.compare_digest(_digest(got), _digest(want))


# --- API keys ------------------------------------------------------------------------------------------

METRICS_GROUP = "metrics"  # not a Triton API group: the metrics port, which API keys can guard too
API_KEY_GROUP_NAMES = frozenset((*TRITON_API_GROUPS, METRICS_GROUP))
DEFAULT_API_KEY_GROUPS: Tuple[str, ...] = tuple(g for g in TRITON_API_GROUPS if g != "health")
DEFAULT_API_KEY_HEADER = "X-API-Key"
AUTHORIZATION = "authorization"
WWW_AUTHENTICATE = 'Bearer realm="pytriton_lite"'
MISSING_API_KEY = "API key required: send 'Authorization: Bearer <key>' or '{}: <key>'"
WRONG_API_KEY = "Invalid API key"
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # an HTTP token; gRPC keys are its lower case


class KeyVerdict(enum.Enum):
    OK = "ok"
    MISSING = "missing"  # 401 / UNAUTHENTICATED
    WRONG = "wrong"  # 403 / PERMISSION_DENIED


class ApiKeys:
    """The keys a server accepts, the extra header that may carry one, and the groups they guard; immutable.

    Only SHA-256 digests of the keys are kept; ``repr`` shows how many there are, never a key.
    """

    __slots__ = ("_digests", "header", "groups")
    _digests: Tuple[bytes, ...]
    header: str  # lower-cased
    groups: FrozenSet[str]

    def __init__(
        self, keys: Iterable[str], header: str = DEFAULT_API_KEY_HEADER, groups: Optional[Iterable[str]] = None
    ) -> None:
        digests = tuple(dict.fromkeys(_digest(k) for k in keys))
        if not digests:
            raise PyTritonValidationError("ApiKeys needs at least one key")
        object.__setattr__(self, "_digests", digests)
        object.__setattr__(self, "header", check_api_key_header(header).lower())
        object.__setattr__(self, "groups", check_api_key_groups(groups))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __getstate__(self) -> Tuple[Tuple[bytes, ...], str, FrozenSet[str]]:
        return self._digests, self.header, self.groups  # digests only: front-end workers get no key

    def __setstate__(self, state: Tuple[Tuple[bytes, ...], str, FrozenSet[str]]) -> None:
        for name, value in zip(("_digests", "header", "groups"), state):
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"ApiKeys(<{len(self._digests)} key(s)>, header={self.header!r}, groups={sorted(self.groups)!r})"

    def guards(self, group: str) -> bool:
        return group in self.groups

    def verdict(self, headers: Iterable[Tuple[str, str]]) -> KeyVerdict:
        """The verdict on a request's ``(lower-case name, value)`` headers or metadata.

        A key counts when it comes as ``Authorization: Bearer <key>`` (scheme case-insensitive) or as the key
        header's value; any one matching key admits the request.
        """
        presented: List[str] = []
        for name, value in headers:
            if name == AUTHORIZATION:
                scheme, _, credentials = value.strip().partition(" ")
                if scheme.lower() == "bearer" and credentials.strip():
                    presented.append(credentials.strip())
            elif name == self.header and value.strip():
                presented.append(value.strip())
        if not presented:
            return KeyVerdict.MISSING
        matched = False
        for candidate in presented:
            digest = _digest(candidate)
            for known in self._digests:  # every key tried: the time does not tell which one (or none) matched
                matched |= hmac.compare_digest(digest, known)
        return KeyVerdict.OK if matched else KeyVerdict.WRONG

    def missing_message(self) -> str:
        return MISSING_API_KEY.format(self.header)


class ApiKeyMissing(InferenceError):
    """No API key on a guarded group: 401 with ``WWW-Authenticate`` / UNAUTHENTICATED."""

    http_status = 401
    grpc_code = "UNAUTHENTICATED"


class ApiKeyWrong(InferenceError):
    """An API key the server does not know: 403 / PERMISSION_DENIED."""

    http_status = 403
    grpc_code = "PERMISSION_DENIED"


def check_api_key(keys: ApiKeys, headers: Iterable[Tuple[str, str]]) -> None:
    """Raise ``ApiKeyMissing``/``ApiKeyWrong`` unless ``headers`` (lower-case names) carry one of ``keys``."""
    verdict = keys.verdict(headers)
    if verdict is KeyVerdict.MISSING:
        raise ApiKeyMissing(keys.missing_message(), headers=(("www-authenticate", WWW_AUTHENTICATE),))
    if verdict is KeyVerdict.WRONG:
        raise ApiKeyWrong(WRONG_API_KEY)


class GrpcGate:
    """One RPC group's checks on gRPC metadata: the API key (where keys guard the group), then the
    ``--grpc-restricted-protocol`` rule. ``refusal`` gives ``(status code name, message, trailing metadata)``."""

    __slots__ = ("_rule", "_message", "_keys")

    def __init__(self, rule: Optional[Rule], message: str, keys: Optional[ApiKeys]) -> None:
        self._rule, self._message, self._keys = rule, message, keys

    @classmethod
    def of(cls, policy: AccessPolicy, group: str, keys: Optional[ApiKeys]) -> Optional[GrpcGate]:
        """The gate of ``group``; None when nothing is checked there."""
        rule = policy.get(group)
        keys = keys if keys is not None and keys.guards(group) else None
        if rule is None and keys is None:
            return None
        return cls(rule, policy.refusal(group) if rule is not None else "", keys)

    def refusal(self, metadata: Iterable[Tuple[str, object]]) -> Optional[Tuple[str, str, Tuple[Tuple[str, str], ...]]]:
        pairs = [(key, value) for key, value in metadata if isinstance(value, str)]  # -bin values are bytes
        if self._keys is not None:
            try:
                check_api_key(self._keys, pairs)
            except InferenceError as exc:
                return exc.grpc_code, str(exc), exc.headers
        if self._rule is not None:
            header, want = self._rule
            if not any(key == header and same_secret(value, want) for key, value in pairs):
                return "UNAVAILABLE", self._message, ()  # Triton's code for a restricted protocol
        return None


def check_api_key_header(header: str) -> str:
    if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header) or header.lower() == AUTHORIZATION:
        raise PyTritonValidationError(
            f"Invalid api_key_header {header!r}: a header name other than Authorization (always accepted)"
        )
    return header


def check_api_key_groups(groups: Optional[Iterable[str]]) -> FrozenSet[str]:
    chosen = DEFAULT_API_KEY_GROUPS if groups is None else tuple([groups] if isinstance(groups, str) else groups)
    invalid = sorted(set(chosen) - API_KEY_GROUP_NAMES)
    if invalid:
        valid = ", ".join(sorted(API_KEY_GROUP_NAMES))
        raise PyTritonValidationError(f"Invalid api_key_groups: {', '.join(invalid)}. Valid groups are: {valid}")
    return frozenset(chosen)


def _keys_in(text: str) -> Iterator[str]:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def read_api_keys(
    keys: Union[None, str, Sequence[str]] = None,
    env: Optional[str] = None,
    file: Union[None, str, os.PathLike[str]] = None,
) -> Tuple[str, ...]:
    """Every key from ``keys``, the environment variable named ``env`` (separated by commas or whitespace) and the file
    ``file`` (one key per line, ``#`` comments), without repeats. A source that is named but gives no key is an
    error: a server asked to require keys must not start open. Messages never show a key.
    """
    found: List[Tuple[str, str]] = []
    if keys is not None:
        listed = [keys] if isinstance(keys, str) else list(keys)
        found += [("api_keys", key.strip() if isinstance(key, str) else key) for key in listed]
    if env is not None:
        value = os.environ.get(env)
        parts = value.replace(",", " ").split() if value else []
        if not parts:
            raise PyTritonValidationError(f"api_keys_env: environment variable {env!r} is not set or holds no key")
        found += [(f"${env}", part) for part in parts]
    if file is not None:
        try:
            text = pathlib.Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PyTritonValidationError(f"api_keys_file: cannot read {str(file)!r}: {exc}") from None
        parts = list(_keys_in(text))
        if not parts:
            raise PyTritonValidationError(f"api_keys_file: {str(file)!r} holds no key")
        found += [(str(file), part) for part in parts]
    for index, (source, key) in enumerate(found, 1):
        if not isinstance(key, str) or not key or not all("!" <= ch <= "~" and ch != "," for ch in key):
            raise PyTritonValidationError(
                f"API key #{index} (from {source}) is empty or has a character a header cannot carry "
                "(use printable ASCII without spaces or commas)"
            )
    return tuple(dict.fromkeys(key for _, key in found))


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
    "ApiKeys",
    "GrpcGate",
    "ApiKeyMissing",
    "ApiKeyWrong",
    "check_api_key",
    "KeyVerdict",
    "read_api_keys",
    "same_secret",
    "API_KEY_GROUP_NAMES",
    "DEFAULT_API_KEY_GROUPS",
    "DEFAULT_API_KEY_HEADER",
    "METRICS_GROUP",
    "WWW_AUTHENTICATE",
    "WRONG_API_KEY",
    "compile_forward_pattern",
    "GRPC_METHOD_GROUPS",
    "GRPC_HEADER_PREFIX",
    "GRPC_RESTRICTED",
    "HTTP_RESTRICTED",
    "parse_grpc_restricted_protocol",
    "parse_http_restricted_api",
]
