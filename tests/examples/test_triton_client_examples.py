"""examples/triton_client_examples: ``python -m pytriton_lite serve`` on the folder's repository answers the way
tritonclient's own example programs (simple_*_client.py) check: ``simple`` over HTTP, gRPC and system shared
memory, ``simple_string`` and ``simple_identity``, the three sequence models over HTTP, gRPC and the gRPC stream.
Our own code, in those programs' steps."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Tuple, Union

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as shm
from example_support import example_env

REPOSITORY = Path(__file__).resolve().parents[2] / "examples" / "triton_client_examples" / "models"
VALUES = [11, 7, 5, 3, 2, 0, 1]
SequenceId = Union[int, str]
MODELS = [
    "simple",
    "simple_string",
    "simple_identity",
    "simple_sequence",
    "simple_dyna_sequence",
    "simple_string_dyna_sequence",
]


class Served(NamedTuple):
    http: str
    grpc: str


def _wait_for(lines: List[str], process: subprocess.Popen, pattern: str, timeout: float = 60.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lines):
            match = re.search(pattern, line)
            if match:
                return match
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(lines))


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    command = [sys.executable, "-m", "pytriton_lite", "serve", f"--model-repository={REPOSITORY}"]
    command += ["--http-port=0", "--grpc-port=0", "--metrics-port=0"]
    command += ["--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1"]
    process = subprocess.Popen(
        command, env=example_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: List[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        http = _wait_for(lines, process, r"Started HTTPService at (127\.0\.0\.1:\d+)").group(1)
        grpc = _wait_for(lines, process, r"Started GRPCInferenceService at (127\.0\.0\.1:\d+)").group(1)
        for model in MODELS:
            _wait_for(lines, process, rf"\| {model}\s+\| 1\s+\| READY\s+\|")
        yield Served(http, grpc)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            status = process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
            reader.join(10)
            if process.stderr is not None:
                process.stderr.close()
    assert status == 0, "\n".join(lines)


def _module(protocol: str) -> Any:
    return httpclient if protocol == "http" else grpcclient


def _client(served: Served, protocol: str) -> Any:
    return _module(protocol).InferenceServerClient(served.http if protocol == "http" else served.grpc)


def _simple_inputs(module: Any) -> Tuple[List[Any], np.ndarray, np.ndarray]:
    in0 = np.arange(16, dtype=np.int32).reshape(1, 16)
    in1 = np.full((1, 16), -1, dtype=np.int32)
    inputs = [module.InferInput("INPUT0", [1, 16], "INT32"), module.InferInput("INPUT1", [1, 16], "INT32")]
    inputs[0].set_data_from_numpy(in0)
    inputs[1].set_data_from_numpy(in1)
    return inputs, in0, in1


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_simple(served, protocol):
    module = _module(protocol)
    with _client(served, protocol) as client:
        inputs, in0, in1 = _simple_inputs(module)
        outputs = [module.InferRequestedOutput("OUTPUT0"), module.InferRequestedOutput("OUTPUT1")]
        result = client.infer("simple", inputs, outputs=outputs, request_id="1")
        assert result.as_numpy("OUTPUT0").tolist() == (in0 + in1).tolist()
        assert result.as_numpy("OUTPUT1").tolist() == (in0 - in1).tolist()
        response = result.get_response()
        assert (response["id"] if protocol == "http" else response.id) == "1"
        # simple_*_infer_client.py also checks that an unknown model is refused
        with pytest.raises(Exception, match="wrong_model_name"):
            client.infer("wrong_model_name", inputs)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_simple_over_system_shared_memory(served, protocol):
    module = _module(protocol)
    key = uuid.uuid4().hex[:8]
    in0 = np.arange(16, dtype=np.int32)
    in1 = np.ones(16, dtype=np.int32)
    size = in0.nbytes
    with _client(served, protocol) as client:
        client.unregister_system_shared_memory()
        out_handle = shm.create_shared_memory_region("output_data", f"/output_{key}", size * 2)
        in_handle = shm.create_shared_memory_region("input_data", f"/input_{key}", size * 2)
        try:
            client.register_system_shared_memory("output_data", f"/output_{key}", size * 2)
            shm.set_shared_memory_region(in_handle, [in0, in1])
            client.register_system_shared_memory("input_data", f"/input_{key}", size * 2)
            inputs = [module.InferInput("INPUT0", [1, 16], "INT32"), module.InferInput("INPUT1", [1, 16], "INT32")]
            inputs[0].set_shared_memory("input_data", size)
            inputs[1].set_shared_memory("input_data", size, offset=size)
            outputs = [module.InferRequestedOutput("OUTPUT0"), module.InferRequestedOutput("OUTPUT1")]
            outputs[0].set_shared_memory("output_data", size)
            outputs[1].set_shared_memory("output_data", size, offset=size)
            result = client.infer("simple", inputs, outputs=outputs)
            for index, name in enumerate(("OUTPUT0", "OUTPUT1")):
                output = result.get_output(name)
                assert output is not None
                shape = output["shape"] if protocol == "http" else list(output.shape)
                assert [int(d) for d in shape] == [1, 16]
                data = shm.get_contents_as_numpy(out_handle, np.int32, [1, 16], offset=index * size)
                expected = in0 + in1 if index == 0 else in0 - in1
                assert data.reshape(-1).tolist() == expected.tolist()
            status = client.get_system_shared_memory_status()
            names = {r["name"] for r in status} if protocol == "http" else set(status.regions)
            assert names == {"input_data", "output_data"}
        finally:
            client.unregister_system_shared_memory()
            shm.destroy_shared_memory_region(out_handle)
            shm.destroy_shared_memory_region(in_handle)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_simple_string_and_simple_identity(served, protocol):
    module = _module(protocol)
    numbers = np.arange(16).reshape(1, 16)
    with _client(served, protocol) as client:
        inputs = [module.InferInput("INPUT0", [1, 16], "BYTES"), module.InferInput("INPUT1", [1, 16], "BYTES")]
        inputs[0].set_data_from_numpy(np.array([[str(v).encode() for v in numbers[0]]], dtype=np.object_))
        inputs[1].set_data_from_numpy(np.full((1, 16), b"1", dtype=np.object_))
        result = client.infer("simple_string", inputs)
        assert [int(v) for v in result.as_numpy("OUTPUT0")[0]] == (numbers[0] + 1).tolist()
        assert [int(v) for v in result.as_numpy("OUTPUT1")[0]] == (numbers[0] - 1).tolist()
        for data in (
            np.full((1, 16), b"he\x00llo", dtype=np.object_),
            np.full((1, 16), b"\x00\x01\x02\x03", np.bytes_),
        ):
            tensor = module.InferInput("INPUT0", [1, 16], "BYTES")
            tensor.set_data_from_numpy(data)
            answer = client.infer("simple_identity", [tensor]).as_numpy("OUTPUT0")
            assert answer.tolist() == data.astype(np.object_).tolist()  # NUL bytes survive


def _sequences(dyna: bool) -> List[Tuple[str, SequenceId, List[int]]]:
    """The three sequences the example programs send: (model, id, values)."""
    int_model = "simple_dyna_sequence" if dyna else "simple_sequence"
    string_model = "simple_string_dyna_sequence" if dyna else "simple_sequence"
    string_id = "1002" if dyna else str(uuid.uuid4())
    return [
        (int_model, 1000, [0] + VALUES),
        (int_model, 1001, [100] + [-v for v in VALUES]),
        (string_model, string_id, [20] + [-v for v in VALUES]),
    ]


def _expected(model: str, sequence_id: SequenceId, values: List[int]) -> List[int]:
    if model == "simple_string_dyna_sequence":  # a running sum
        out = list(np.cumsum(values))
    else:  # the input, plus one on the first request
        out = [values[0] + 1] + values[1:]
    if model != "simple_sequence":  # the dyna models add the correlation id on the last request
        out[-1] += int(sequence_id)
    return [int(v) for v in out]


def _inputs(module: Any, value: int) -> List[Any]:
    tensor = module.InferInput("INPUT", [1, 1], "INT32")
    tensor.set_data_from_numpy(np.full((1, 1), value, dtype=np.int32))
    return [tensor]


@pytest.mark.parametrize("dyna", [False, True], ids=["simple", "dyna"])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_sequences_sync(served, protocol, dyna):
    module = _module(protocol)
    with _client(served, protocol) as client:
        for model, sequence_id, values in _sequences(dyna):
            out = []
            for count, value in enumerate(values, 1):
                result = client.infer(
                    model,
                    _inputs(module, value),
                    outputs=[module.InferRequestedOutput("OUTPUT")],
                    sequence_id=sequence_id,
                    sequence_start=count == 1,
                    sequence_end=count == len(values),
                )
                out.append(int(result.as_numpy("OUTPUT")[0][0]))
            assert out == _expected(model, sequence_id, values), model


@pytest.mark.parametrize("dyna", [False, True], ids=["simple", "dyna"])
def test_sequences_over_the_grpc_stream(served, dyna):
    completed: queue.Queue = queue.Queue()
    sequences = _sequences(dyna)
    with grpcclient.InferenceServerClient(served.grpc) as client:
        client.start_stream(callback=lambda result, error: completed.put(error or result))
        for model, sequence_id, values in sequences:  # sent one sequence after another, as the program does
            for count, value in enumerate(values, 1):
                client.async_stream_infer(
                    model,
                    _inputs(grpcclient, value),
                    outputs=[grpcclient.InferRequestedOutput("OUTPUT")],
                    request_id=f"{sequence_id}_{count}",
                    sequence_id=sequence_id,
                    sequence_start=count == 1,
                    sequence_end=count == len(values),
                )
        received = [completed.get(timeout=30) for _ in range(sum(len(v) for _, _, v in sequences))]
        client.stop_stream()
    found: Dict[str, List[int]] = {}
    for result in received:
        assert not isinstance(result, Exception), result
        found.setdefault(result.get_response().id.rsplit("_", 1)[0], []).append(int(result.as_numpy("OUTPUT")[0][0]))
    assert found == {str(sid): _expected(model, sid, values) for model, sid, values in sequences}


def test_repeat_int32_streams_one_response_per_element(served):
    # simple_grpc_custom_repeat.py's steps, with short delays: 10 responses OUT = 100..109 in order
    completed: queue.Queue = queue.Queue()
    values = np.arange(100, 110, dtype=np.int32)
    inputs = [
        grpcclient.InferInput("IN", [10], "INT32"),
        grpcclient.InferInput("DELAY", [10], "UINT32"),
        grpcclient.InferInput("WAIT", [1], "UINT32"),
    ]
    inputs[0].set_data_from_numpy(values)
    inputs[1].set_data_from_numpy(np.full(10, 5, dtype=np.uint32))
    inputs[2].set_data_from_numpy(np.array([5], dtype=np.uint32))
    with grpcclient.InferenceServerClient(served.grpc) as client:
        client.start_stream(callback=lambda result, error: completed.put(error or result))
        client.async_stream_infer("repeat_int32", inputs, outputs=[grpcclient.InferRequestedOutput("OUT")])
        received = [completed.get(timeout=30) for _ in range(10)]
        client.stop_stream()
    assert not any(isinstance(r, Exception) for r in received), received
    assert [int(r.as_numpy("OUT")[0]) for r in received] == values.tolist()
