"""core.shm.SystemSharedMemory: register/unregister/status, bounds, keys, and views outliving an unregister."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from pytriton_lite.core.shm import RegionNotFoundError, SystemSharedMemory
from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.protocol import shm as shm_codec


@pytest.fixture
def key():
    """A 64-byte file in /dev/shm holding bytes 0..63; removed afterwards."""
    name = f"pt_lite_unit_{uuid.uuid4().hex[:12]}"
    path = os.path.join("/dev/shm", name)
    with open(path, "wb") as f:
        f.write(bytes(range(64)))
    yield "/" + name
    os.unlink(path)


@pytest.fixture
def registry():
    registry = SystemSharedMemory()
    yield registry
    registry.close()


def test_register_status_unregister(registry, key):
    registry.register("a", key, 0, 64)
    registry.register("b", key, 16, 32)
    assert registry.status() == [
        {"name": "a", "key": key, "offset": 0, "byte_size": 64},
        {"name": "b", "key": key, "offset": 16, "byte_size": 32},
    ]
    assert registry.status("b") == [{"name": "b", "key": key, "offset": 16, "byte_size": 32}]
    assert bytes(registry.view("b", 4, 4)) == bytes([20, 21, 22, 23])  # offsets add up
    registry.unregister("a")
    registry.unregister("a")  # unknown: nothing happens
    assert [r["name"] for r in registry.status()] == ["b"]
    registry.unregister()
    assert registry.status() == [] and len(registry) == 0
    with pytest.raises(RegionNotFoundError, match="Unable to find system shared memory region: 'b'"):
        registry.status("b")


@pytest.mark.parametrize(
    ("name", "offset", "size", "message"),
    [
        ("r", 0, 65, "invalid args"),
        ("r", 60, 8, "invalid args"),
        ("r", 0, 0, "invalid args"),
        ("", 0, 8, "region name is empty"),
    ],
)
def test_register_bounds(registry, key, name, offset, size, message):
    with pytest.raises(InvalidArgumentError, match=message):
        registry.register(name, key, offset, size)
    assert registry.status() == []


@pytest.mark.parametrize("bad", ["/", "", "/a/b", "/..", "/.", "a\0b", "/triton_python_backend_shm_region_1"])
def test_keys_are_names_not_paths(registry, bad):
    with pytest.raises(InvalidArgumentError, match="invalid key"):
        registry.register("r", bad, 0, 8)


def test_missing_symlinked_and_duplicate(registry, key, tmp_path):
    with pytest.raises(InvalidArgumentError, match="Unable to open shared memory region"):
        registry.register("r", "/pt_lite_does_not_exist", 0, 8)
    link = f"pt_lite_link_{uuid.uuid4().hex[:8]}"
    target = tmp_path / "secret"
    target.write_bytes(b"x" * 64)
    os.symlink(target, os.path.join("/dev/shm", link))
    try:
        with pytest.raises(InvalidArgumentError, match="Unable to open shared memory region"):
            registry.register("r", "/" + link, 0, 8)  # never follows a symlink out of /dev/shm
    finally:
        os.unlink(os.path.join("/dev/shm", link))
    registry.register("r", key, 0, 8)
    with pytest.raises(InvalidArgumentError, match="shared memory region 'r' already in manager"):
        registry.register("r", key, 0, 8)


def test_view_and_write_bounds(registry, key):
    registry.register("r", key, 8, 16)
    with pytest.raises(InvalidArgumentError, match="Invalid offset for shared memory region: 'r'"):
        registry.view("r", 17, 0)
    with pytest.raises(InvalidArgumentError, match=r"Invalid offset \+ byte size for shared memory region: 'r'"):
        registry.view("r", 8, 9)
    with pytest.raises(InvalidArgumentError, match=r"Invalid offset \+ byte size"):
        registry.write("r", 0, b"x" * 17)
    with pytest.raises(InvalidArgumentError, match="Unable to find shared memory region: 'other'"):
        registry.view("other", 0, 1)
    registry.write("r", 15, b"\xff")
    assert registry.view("r", 15, 1).tobytes() == b"\xff"
    view = registry.view("r", 0, 4)
    assert view.readonly  # a model cannot scribble on the client's memory through an input


def test_a_view_outlives_unregister_and_close(registry, key):
    registry.register("r", key, 0, 64)
    array = np.frombuffer(registry.view("r", 0, 64), dtype=np.uint8)
    registry.unregister("r")  # does not wait for, nor invalidate, the request holding the view
    registry.close()
    assert int(array.sum()) == sum(range(64))


def test_shrunk_file_is_refused_not_read(registry, key):
    registry.register("r", key, 0, 64)
    os.truncate("/dev/shm/" + key[1:], 16)
    with pytest.raises(InvalidArgumentError, match="smaller than when it was registered"):
        registry.view("r", 0, 64)
    assert registry.view("r", 0, 16).nbytes == 16


def test_region_limit(key):
    registry = SystemSharedMemory(max_regions=2)
    registry.register("a", key, 0, 8)
    registry.register("b", key, 0, 8)
    with pytest.raises(InvalidArgumentError, match="too many regions"):
        registry.register("c", key, 0, 8)
    registry.close()


def test_codec_helpers(registry, key):
    registry.register("r", key, 0, 64)
    ref = shm_codec.ShmRef("r", 16, 16)
    array = shm_codec.read_input(registry, ref, "INT32", [4], "IN", "m")
    assert array.tolist() == np.frombuffer(bytes(range(16, 32)), "<i4").tolist()
    with pytest.raises(InvalidArgumentError, match="Expected 12, got 16"):
        shm_codec.read_input(registry, ref, "INT32", [3], "IN", "m")
    assert shm_codec.ref_from_json({"shared_memory_region": "r", "shared_memory_byte_size": 4}, "") == (
        shm_codec.ShmRef("r", 4, 0)
    )
    with pytest.raises(InvalidArgumentError, match="shared_memory_byte_size"):
        shm_codec.ref_from_json({"shared_memory_region": "r"}, "")
    with pytest.raises(InvalidArgumentError, match="shared_memory_offset"):
        shm_codec.ref_from_json(
            {"shared_memory_region": "r", "shared_memory_byte_size": 4, "shared_memory_offset": -1}, ""
        )
