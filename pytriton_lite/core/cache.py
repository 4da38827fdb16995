"""Response cache: identical requests (same inputs, parameters and requested outputs) skip the callable.

Bounded by bytes, least-recently-used eviction, like Triton's ``local`` cache. Used on the serving loop only.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np

from pytriton_lite.exceptions import PyTritonBadParameterError
from pytriton_lite.types import InferenceRequest


def parse_cache_config(entries: Optional[List[str]]) -> Optional[int]:
    """``["local,size=N"]`` -> N bytes; None when no cache is configured."""
    if not entries:
        return None
    size: Optional[int] = None
    for entry in entries:
        kind, _, rest = entry.partition(",")
        if kind.strip() != "local":
            raise PyTritonBadParameterError(f"Unsupported cache_config {entry!r}: only 'local,size=N' is available")
        for part in rest.split(","):
            key, _, value = part.partition("=")
            if key.strip() == "size":
                try:
                    size = int(value)
                except ValueError:
                    raise PyTritonBadParameterError(f"Invalid cache size in cache_config {entry!r}") from None
    if size is None or size <= 0:
        raise PyTritonBadParameterError(f"cache_config {entries!r} needs a positive 'size=N'")
    return size


def request_key(request: InferenceRequest) -> bytes:
    """A digest of everything that determines a response."""
    digest = hashlib.blake2b(digest_size=20)
    for name in sorted(request.inputs):
        array = request.inputs[name]
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        if array.dtype.kind == "O":
            for item in array.reshape(-1):
                data = item if isinstance(item, bytes) else str(item).encode()
                digest.update(len(data).to_bytes(4, "little"))
                digest.update(data)
        else:
            digest.update(np.ascontiguousarray(array).data)
    digest.update(repr(sorted(request.parameters.items())).encode())
    digest.update(repr(request.requested_outputs).encode())
    return digest.digest()


def _nbytes(outputs: Dict[str, np.ndarray]) -> int:
    total = 0
    for array in outputs.values():
        if array.dtype.kind == "O":
            total += sum(len(x) if isinstance(x, (bytes, str)) else 8 for x in array.reshape(-1))
        else:
            total += array.nbytes
    return total + 64


class ResponseCache:
    """LRU map from request digests to output dicts, bounded by ``capacity`` bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._entries: OrderedDict[bytes, Tuple[Dict[str, np.ndarray], int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Optional[Dict[str, np.ndarray]]:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: bytes, outputs: Dict[str, np.ndarray]) -> None:
        size = _nbytes(outputs)
        if size > self.capacity:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.used -= old[1]
        # own copies: outputs may be views of buffers the caller reuses
        self._entries[key] = ({k: np.array(v, copy=True) for k, v in outputs.items()}, size)
        self.used += size
        while self.used > self.capacity and self._entries:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.used -= evicted
