"""Response cache: keys, LRU eviction by bytes, cache_config parsing."""

from __future__ import annotations

import numpy as np
import pytest

from pytriton_lite.core.cache import ResponseCache, parse_cache_config, request_key
from pytriton_lite.exceptions import PyTritonBadParameterError
from pytriton_lite.types import InferenceRequest


def req(value: float, **kwargs) -> InferenceRequest:
    return InferenceRequest("m", inputs={"x": np.full((1, 4), value, np.float32)}, **kwargs)


def test_parse_cache_config():
    assert parse_cache_config(None) is None
    assert parse_cache_config(["local,size=1048576"]) == 1048576
    for bad in (["redis,host=x"], ["local"], ["local,size=abc"], ["local,size=0"]):
        with pytest.raises(PyTritonBadParameterError):
            parse_cache_config(bad)


def test_key_depends_on_everything_that_shapes_a_response():
    base = request_key(req(1.0))
    assert base == request_key(req(1.0))
    assert base != request_key(req(2.0))
    assert base != request_key(req(1.0, parameters={"p": 1}))
    assert base != request_key(req(1.0, requested_outputs=["y"]))
    as_int = InferenceRequest("m", inputs={"x": np.full((1, 4), 1, np.int32)})
    assert base != request_key(as_int)  # same bytes would differ by dtype
    a = InferenceRequest("m", inputs={"s": np.array([b"ab", b"c"], dtype=object)})
    b = InferenceRequest("m", inputs={"s": np.array([b"a", b"bc"], dtype=object)})
    assert request_key(a) != request_key(b)  # length-prefixed, so element boundaries count


def test_lru_eviction_bounded_by_bytes():
    cache = ResponseCache(capacity=3 * (4000 + 64))
    for i in range(4):
        cache.put(bytes([i]), {"y": np.zeros(1000, np.float32)})
    assert len(cache) == 3 and cache.get(b"\x00") is None  # oldest evicted
    assert cache.get(b"\x01") is not None  # touch 1 -> 2 becomes the oldest
    cache.put(b"\x04", {"y": np.zeros(1000, np.float32)})
    assert cache.get(b"\x02") is None and cache.get(b"\x01") is not None
    assert cache.used <= cache.capacity
    cache.put(b"big", {"y": np.zeros(10**6, np.float32)})  # larger than the whole cache: not stored
    assert cache.get(b"big") is None


def test_cached_outputs_are_copies():
    cache = ResponseCache(10**6)
    out = np.arange(4, dtype=np.float32)
    cache.put(b"k", {"y": out})
    out[:] = -1
    assert cache.get(b"k")["y"].tolist() == [0.0, 1.0, 2.0, 3.0]
