"""CUDA shared memory (Triton's cudasharedmemory extension) on a machine with an NVIDIA GPU; skips elsewhere.

The server runs in its own process (CUDA IPC opens a handle made by another process); this process allocates
the GPU buffers with cupy's CUDA runtime calls, hands their ``cudaIpcMemHandle_t`` to the server with
tritonclient over HTTP and gRPC, and checks that the model read its input from GPU memory and wrote its output
there.

    python -m pytest tests/gpu/test_cuda_shm.py -v
"""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

cupy = pytest.importorskip("cupy")
try:
    GPUS = cupy.cuda.runtime.getDeviceCount()
except Exception:  # noqa: BLE001 - no driver, no device
    GPUS = 0
if not GPUS:
    pytest.skip("no CUDA GPU here", allow_module_level=True)
RT = cupy.cuda.runtime

SERVER = textwrap.dedent(
    """
    import sys, numpy as np
    from pytriton_lite import Triton, TritonConfig
    from pytriton_lite.config import TritonSecurityConfig
    from pytriton_lite.decorators import batch
    from pytriton_lite.model_config import ModelConfig, Tensor

    @batch
    def double(x):
        return {"y": x * 2}

    config = TritonConfig(http_port=0, grpc_port=0, metrics_port=0, http_address="127.0.0.1",
                          grpc_address="127.0.0.1", frontend_workers=0)
    with Triton(config=config, security_config=TritonSecurityConfig(restricted_endpoints=[])) as t:
        t.bind("double", double, [Tensor(name="x", dtype=np.float32, shape=(-1,))],
               [Tensor(name="y", dtype=np.float32, shape=(-1,))], config=ModelConfig(max_batch_size=8))
        print("PORTS", t.http_port, t.grpc_port, flush=True)
        sys.stdin.read()  # until the test closes our stdin
    """
)


@pytest.fixture(scope="module")
def ports():
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("PORTS") or not line:
                break
        assert line.startswith("PORTS"), "the server did not start"
        _, http_port, grpc_port = line.split()
        yield int(http_port), int(grpc_port)
    finally:
        proc.stdin.close()
        proc.wait(30)
        proc.stdout.close()


def _to_device(values: np.ndarray) -> int:
    pointer = RT.malloc(values.nbytes)  # an allocation of its own: its IPC handle opens it at offset 0
    RT.memcpy(pointer, values.ctypes.data, values.nbytes, RT.memcpyHostToDevice)
    return int(pointer)


def _to_host(pointer: int, like: np.ndarray) -> np.ndarray:
    out = np.empty_like(like)
    RT.memcpy(out.ctypes.data, pointer, out.nbytes, RT.memcpyDeviceToHost)
    return out


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_inputs_and_outputs_in_cuda_shared_memory(ports, protocol):
    http_port, grpc_port = ports
    module = httpclient if protocol == "http" else grpcclient
    client = module.InferenceServerClient(f"127.0.0.1:{http_port if protocol == 'http' else grpc_port}")
    source = np.arange(6, dtype=np.float32).reshape(1, 6)
    in_pointer, out_pointer = _to_device(source), _to_device(np.zeros_like(source))
    names = (f"{protocol}_in", f"{protocol}_out")
    try:
        for name, pointer in zip(names, (in_pointer, out_pointer)):
            raw = base64.b64encode(bytes(RT.ipcGetMemHandle(pointer)))  # as tritonclient's get_raw_handle
            client.register_cuda_shared_memory(name, raw, 0, source.nbytes)
        status = client.get_cuda_shared_memory_status()
        listed = [r["name"] for r in status] if protocol == "http" else list(status.regions)
        assert set(names) <= set(listed)
        x = module.InferInput("x", [1, 6], "FP32")
        x.set_shared_memory(names[0], source.nbytes)
        y = module.InferRequestedOutput("y", **({"binary_data": True} if protocol == "http" else {}))
        y.set_shared_memory(names[1], source.nbytes)
        result = client.infer("double", [x], outputs=[y])
        assert result.get_output("y") is not None
        np.testing.assert_array_equal(_to_host(out_pointer, source), source * 2)
        client.unregister_cuda_shared_memory()
        status = client.get_cuda_shared_memory_status()
        assert not (status if protocol == "http" else status.regions)
    finally:
        client.close()
        RT.free(in_pointer)
        RT.free(out_pointer)


def test_a_bad_handle_is_refused_and_the_server_keeps_serving(ports):
    http_port, _ = ports
    client = httpclient.InferenceServerClient(f"127.0.0.1:{http_port}")
    try:
        with pytest.raises(Exception, match="CUDA shared memory"):
            client.register_cuda_shared_memory("bad", base64.b64encode(b"\1" * 64), 0, 64)
        with pytest.raises(Exception, match="64 bytes"):
            client.register_cuda_shared_memory("short", base64.b64encode(b"\1" * 8), 0, 64)
        assert client.is_server_live()
    finally:
        client.close()
