"""Triton's CUDA shared-memory extension over HTTP and gRPC, with the CUDA runtime replaced by a fake device.

A GPU machine runs the real thing (tests/gpu/test_cuda_shm.py, and tritonclient's cudashm example clients);
here ``CudaRuntime`` is swapped for ``FakeDevice``, whose "device memory" is host bytes keyed by the handle, so
the routes, the register body, status, the reads of inputs and the writes of outputs are all exercised. Without
any runtime the registration is refused with the reason.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.core import cuda_shm
from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import TritonSecurityConfig

pytestmark = pytest.mark.in_process  # front-end workers do not serve CUDA regions (docs/scaling.md)


class FakeDevice:
    """One fake GPU: each 64-byte handle names a buffer of host memory standing in for device memory."""

    buffers: dict = {}

    def __init__(self) -> None:
        self.device_count = 1
        self.opened: dict = {}

    def open(self, handle: bytes, device_id: int) -> int:
        if handle not in self.buffers:
            raise OSError("cudaIpcOpenMemHandle failed: invalid argument")
        pointer = 0x1000 * (len(self.opened) + 1)
        self.opened[pointer] = handle
        return pointer

    def close(self, pointer: int, device_id: int) -> None:
        self.opened.pop(pointer - pointer % 0x1000, None)

    def _memory(self, pointer: int) -> tuple:
        base = pointer - pointer % 0x1000
        return self.buffers[self.opened[base]], pointer - base

    def to_host(self, pointer: int, device_id: int, size: int) -> bytearray:
        memory, at = self._memory(pointer)
        return bytearray(memory[at : at + size])

    def to_device(self, pointer: int, device_id: int, data: memoryview) -> None:
        memory, at = self._memory(pointer)
        memory[at : at + data.nbytes] = bytes(data)


@pytest.fixture
def fake_gpu(monkeypatch):
    FakeDevice.buffers = {}
    monkeypatch.setattr(cuda_shm, "CudaRuntime", FakeDevice)
    return FakeDevice.buffers


def _serve(triton_server):
    from pytriton_lite.config import TritonConfig

    triton = triton_server(TritonConfig(), security_config=TritonSecurityConfig(restricted_endpoints=[]))

    @batch
    def double(x):
        return {"y": x * 2}

    triton.bind(
        "double",
        double,
        [Tensor(name="x", dtype=np.float32, shape=(-1,))],
        [Tensor(name="y", dtype=np.float32, shape=(-1,))],
        config=ModelConfig(max_batch_size=8),
    )
    return triton


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_inputs_and_outputs_in_cuda_regions(triton_server, fake_gpu, protocol):
    triton = _serve(triton_server)
    module = httpclient if protocol == "http" else grpcclient
    url = triton.http_url[7:] if protocol == "http" else triton.grpc_url[7:]
    client = module.InferenceServerClient(url)
    data = np.arange(6, dtype=np.float32).reshape(1, 6)
    fake_gpu[b"i" * 64] = bytearray(16) + bytearray(data.tobytes())  # the input at offset 16
    fake_gpu[b"o" * 64] = bytearray(data.nbytes)
    try:
        client.register_cuda_shared_memory("in", base64.b64encode(b"i" * 64), 0, 16 + data.nbytes)
        client.register_cuda_shared_memory("out", base64.b64encode(b"o" * 64), 0, data.nbytes)
        status = client.get_cuda_shared_memory_status()
        if protocol == "http":
            assert sorted(status, key=lambda r: r["name"]) == [
                {"name": "in", "device_id": 0, "byte_size": 16 + data.nbytes},
                {"name": "out", "device_id": 0, "byte_size": data.nbytes},
            ]
        else:
            assert {k: (v.device_id, v.byte_size) for k, v in status.regions.items()} == {
                "in": (0, 16 + data.nbytes),
                "out": (0, data.nbytes),
            }
        x = module.InferInput("x", [1, 6], "FP32")
        x.set_shared_memory("in", data.nbytes, offset=16)
        y = module.InferRequestedOutput("y", **({"binary_data": True} if protocol == "http" else {}))
        y.set_shared_memory("out", data.nbytes)
        result = client.infer("double", [x], outputs=[y])
        assert result.get_output("y") is not None
        np.testing.assert_array_equal(np.frombuffer(bytes(fake_gpu[b"o" * 64]), np.float32), data.ravel() * 2)
        # past the region's end: refused, the server keeps serving
        x.set_shared_memory("in", data.nbytes, offset=32)
        with pytest.raises(InferenceServerException, match="Invalid offset"):
            client.infer("double", [x], outputs=[y])
        with pytest.raises(InferenceServerException, match="already in manager"):
            client.register_cuda_shared_memory("in", base64.b64encode(b"i" * 64), 0, 8)
        client.unregister_cuda_shared_memory("in")
        status = client.get_cuda_shared_memory_status()
        names = [r["name"] for r in status] if protocol == "http" else list(status.regions)
        assert names == ["out"]
        client.unregister_cuda_shared_memory()
        assert client.is_server_live()
    finally:
        client.close()


def test_handles_that_do_not_open_and_bad_bodies_are_refused(triton_server, fake_gpu):
    triton = _serve(triton_server)
    client = httpclient.InferenceServerClient(triton.http_url[7:])
    try:
        with pytest.raises(InferenceServerException, match="cudaIpcOpenMemHandle failed"):
            client.register_cuda_shared_memory("x", base64.b64encode(b"z" * 64), 0, 64)
        with pytest.raises(InferenceServerException, match="must be 64 bytes"):
            client.register_cuda_shared_memory("x", base64.b64encode(b"z" * 8), 0, 64)
        with pytest.raises(InferenceServerException, match="no GPU 3"):
            client.register_cuda_shared_memory("x", base64.b64encode(b"z" * 64), 3, 64)
        with pytest.raises(InferenceServerException, match="Unable to find cuda shared memory region"):
            client.get_cuda_shared_memory_status("x")
    finally:
        client.close()
    import httpx

    with httpx.Client(base_url=triton.http_url) as raw:
        answer = raw.post("/v2/cudasharedmemory/region/x/register", json={"raw_handle": "no", "byte_size": 1})
        assert answer.status_code == 400 and "raw_handle" in answer.json()["error"]
        answer = raw.post("/v2/cudasharedmemory/region/x/register", json={"raw_handle": {"b64": "!!"}})
        assert answer.status_code == 400 and "base64" in answer.json()["error"]


def test_without_a_cuda_runtime_registration_names_the_reason(triton_server, monkeypatch):
    def missing() -> None:
        raise OSError("no CUDA runtime (libcudart) found; set PYTRITON_LITE_CUDART to its path")

    monkeypatch.setattr(cuda_shm, "CudaRuntime", missing)
    triton = _serve(triton_server)
    client = grpcclient.InferenceServerClient(triton.grpc_url[7:])
    try:
        with pytest.raises(InferenceServerException, match="no CUDA runtime") as info:
            client.register_cuda_shared_memory("x", base64.b64encode(b"z" * 64), 0, 64)
        assert "INVALID_ARGUMENT" in str(info.value.status())
        assert not client.get_cuda_shared_memory_status().regions
        assert client.is_server_live()
    finally:
        client.close()
