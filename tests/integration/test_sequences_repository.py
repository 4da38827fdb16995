"""A repository model configured as Triton's example ``simple_sequence`` (START and READY int32 controls, no
strategy given; here a python model and the same graph in ONNX) answers
tritonclient's simple sequence clients as tritonserver does. A TorchScript model with ``sequence_batching`` fails
to load with a reason that says so."""

from __future__ import annotations

import queue
import uuid
from typing import Any, Dict, List, Union

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from pytriton_lite.testing import running_triton  # noqa: E402
from pytriton_lite.triton import TritonConfig  # noqa: E402

VALUES = [11, 7, 5, 3, 2, 0, 1]

CONFIG = """
name: "{name}"
{backend}
max_batch_size: 8
sequence_batching {{
  control_input [
    {{ name: "START" control [{{ kind: CONTROL_SEQUENCE_START int32_false_true: [0, 1] }}] }},
    {{ name: "READY" control [{{ kind: CONTROL_SEQUENCE_READY int32_false_true: [0, 1] }}] }}
  ]
}}
input [{{ name: "INPUT" data_type: TYPE_INT32 dims: [1] }}]
output [{{ name: "OUTPUT" data_type: TYPE_INT32 dims: [1] }}]
instance_group [{{ kind: KIND_CPU }}]
"""

MODEL_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for request in requests:
            value, start, ready = (
                pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in ("INPUT", "START", "READY")
            )
            output = pb_utils.Tensor("OUTPUT", ((value + start) * ready).astype(np.int32))
            out.append(pb_utils.InferenceResponse([output]))
        return out
"""


def _graph() -> Any:
    """OUTPUT = (INPUT + START) * READY, every tensor int32 [batch, 1]."""
    tensors = [helper.make_tensor_value_info(n, TensorProto.INT32, ["batch", 1]) for n in ("INPUT", "START", "READY")]
    nodes = [
        helper.make_node("Add", ["INPUT", "START"], ["SUM"]),
        helper.make_node("Mul", ["SUM", "READY"], ["OUTPUT"]),
    ]
    graph = helper.make_graph(
        nodes, "simple_sequence", tensors, [helper.make_tensor_value_info("OUTPUT", TensorProto.INT32, ["batch", 1])]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repository = tmp_path_factory.mktemp("sequence_repository")
    for name, backend in (("simple_sequence", 'backend: "python"'), ("onnx_sequence", 'platform: "onnxruntime_onnx"')):
        (repository / name / "1").mkdir(parents=True)
        (repository / name / "config.pbtxt").write_text(CONFIG.format(name=name, backend=backend))
    (repository / "simple_sequence" / "1" / "model.py").write_text(MODEL_PY)
    onnx.save(_graph(), str(repository / "onnx_sequence" / "1" / "model.onnx"))
    config = TritonConfig(model_repository=repository, allow_metrics=False, exit_on_error=False, strict_readiness=False)
    with running_triton(config) as triton:
        yield triton


def test_python_and_onnx_sequence_models_load(server):
    with httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}") as client:
        rows = {row["name"]: row for row in client.get_model_repository_index()}
    assert rows["simple_sequence"]["state"] == "READY"
    assert rows["onnx_sequence"]["state"] == "READY"  # START and READY are graph inputs the batcher fills


def test_a_torchscript_sequence_model_is_refused_with_its_reason(tmp_path):
    model = tmp_path / "torch_sequence"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(CONFIG.format(name="torch_sequence", backend='platform: "pytorch_libtorch"'))
    (model / "1" / "model.pt").write_bytes(b"not read: the config is refused first")
    config = TritonConfig(model_repository=tmp_path, allow_metrics=False, exit_on_error=False, strict_readiness=False)
    with running_triton(config) as triton:
        with httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}") as client:
            (row,) = client.get_model_repository_index()
    assert row["state"] == "UNAVAILABLE"
    assert "sequence batching is served for python-backend and onnxruntime models only" in row["reason"]


def _expected(first: int, sign: int) -> List[int]:
    return [first + 1] + [sign * v for v in VALUES]


def _inputs(module: Any, value: int) -> List[Any]:
    tensor = module.InferInput("INPUT", [1, 1], "INT32")
    tensor.set_data_from_numpy(np.full((1, 1), value, dtype=np.int32))
    return [tensor]


SEQUENCES: List[Any] = [(1000, [0] + VALUES, 0, 1), (1001, [100] + [-v for v in VALUES], 100, -1)]


@pytest.mark.parametrize("model", ["simple_sequence", "onnx_sequence"])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_sync_clients_flow(server, protocol, model):
    module = httpclient if protocol == "http" else grpcclient
    port = server.http_port if protocol == "http" else server.grpc_port
    string_id = str(uuid.uuid4())
    with module.InferenceServerClient(f"127.0.0.1:{port}") as client:
        for sequence_id, values, first, sign in SEQUENCES + [(string_id, [20] + [-v for v in VALUES], 20, -1)]:
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
            assert out == _expected(first, sign)


def test_the_stream_client_flow(server):
    completed: queue.Queue = queue.Queue()
    string_id = str(uuid.uuid4())
    sequences = SEQUENCES + [(string_id, [20] + [-v for v in VALUES], 20, -1)]
    with grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}") as client:
        client.start_stream(callback=lambda result, error: completed.put(error or result))
        for sequence_id, values, _, _ in sequences:
            for count, value in enumerate(values, 1):
                client.async_stream_infer(
                    "simple_sequence",
                    _inputs(grpcclient, value),
                    outputs=[grpcclient.InferRequestedOutput("OUTPUT")],
                    request_id=f"{sequence_id}_{count}",
                    sequence_id=sequence_id,
                    sequence_start=count == 1,
                    sequence_end=count == len(values),
                )
        received = [completed.get(timeout=30) for _ in range(3 * (len(VALUES) + 1))]
        client.stop_stream()
    found: Dict[Union[str, int], List[int]] = {}
    for result in received:
        assert not isinstance(result, Exception), result
        sequence_id = result.get_response().id.rsplit("_", 1)[0]
        found.setdefault(sequence_id, []).append(int(result.as_numpy("OUTPUT")[0][0]))
    assert found == {str(sid): _expected(first, sign) for sid, _, first, sign in sequences}
