"""Sequence batching (issue 13, part 1): stateful models driven as tritonclient's simple sequence clients drive
them (simple_http_sequence_sync_infer_client, simple_grpc_sequence_sync_infer_client,
simple_grpc_sequence_stream_infer_client, simple_grpc_aio_sequence_stream_infer_client), over HTTP, gRPC and the
gRPC stream, against bound models (``ModelConfig(sequence_batcher=...)``) and a python-backend repository model
(``pb_utils`` correlation_id / flags). Errors and the idle timeout answer with Triton's texts."""

from __future__ import annotations

import asyncio
import queue
import textwrap
import threading
import time
import uuid
from typing import Any, Dict, List, Tuple, Union

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aioclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import (
    ModelConfig,
    SequenceBatcher,
    SequenceBatcherControl,
    SequenceBatcherControlInput,
    SequenceBatcherControlKind,
    SequenceBatcherStrategyDirect,
    SequenceBatcherStrategyOldest,
    Tensor,
)
from pytriton_lite.testing import running_triton
from pytriton_lite.triton import TritonConfig

VALUES = [11, 7, 5, 3, 2, 0, 1]  # what tritonclient's examples send after the first value
SequenceId = Union[int, str]


def _control(name: str, kind: str, **fields: Any) -> SequenceBatcherControlInput:
    return SequenceBatcherControlInput(name, [SequenceBatcherControl(SequenceBatcherControlKind[kind], **fields)])


INT_IO = ([Tensor(name="INPUT", dtype=np.int32, shape=(1,))], [Tensor(name="OUTPUT", dtype=np.int32, shape=(1,))])

PY_CONFIG = """
name: "py_acc"
backend: "python"
max_batch_size: 4
sequence_batching {
  oldest { max_candidate_sequences: 4 max_queue_delay_microseconds: 1000 }
  control_input [{ name: "START" control [{ kind: CONTROL_SEQUENCE_START bool_false_true: [false, true] }] }]
}
input [{ name: "INPUT" data_type: TYPE_INT32 dims: [1] }]
output [
  { name: "OUTPUT" data_type: TYPE_INT32 dims: [1] },
  { name: "STARTED" data_type: TYPE_BOOL dims: [1] }
]
instance_group [{ count: 2 kind: KIND_CPU }]
"""

PY_MODEL = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.sums = {}

    def execute(self, requests):
        responses = []
        for request in requests:
            value = int(pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy().reshape(-1)[0])
            start = pb_utils.get_input_tensor_by_name(request, "START").as_numpy()
            sequence, flags = request.correlation_id(), request.flags()
            if flags & pb_utils.TRITONSERVER_REQUEST_FLAG_SEQUENCE_START:
                self.sums[sequence] = 0
            self.sums[sequence] += value
            total = self.sums[sequence]
            if flags & pb_utils.TRITONSERVER_REQUEST_FLAG_SEQUENCE_END:
                del self.sums[sequence]
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("OUTPUT", np.array([[total]], dtype=np.int32)),
                pb_utils.Tensor("STARTED", start.reshape(1, 1)),
            ]))
        return responses
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repository = tmp_path_factory.mktemp("repo")
    (repository / "py_acc" / "1").mkdir(parents=True)
    (repository / "py_acc" / "config.pbtxt").write_text(PY_CONFIG)
    (repository / "py_acc" / "1" / "model.py").write_text(textwrap.dedent(PY_MODEL))
    served_by: List[Tuple[int, int]] = []  # (instance, CORRID) of every row the dyna model ran

    @batch
    def simple_sequence(INPUT, START, READY):
        # what Triton's example simple_sequence model answers: the input, plus one on the sequence's first request
        return {"OUTPUT": ((INPUT + START) * READY).astype(np.int32)}

    def dyna(instance: int):
        sums: Dict[int, int] = {}

        @batch
        def infer(INPUT, START, END, READY, CORRID):
            out = np.zeros_like(INPUT)
            for row in range(INPUT.shape[0]):
                corrid = int(CORRID[row, 0])
                served_by.append((instance, corrid))
                sums[corrid] = (0 if START[row, 0] else sums[corrid]) + int(INPUT[row, 0])
                out[row, 0] = sums[corrid] + (corrid if END[row, 0] else 0)  # the dyna example adds the id at the end
                if END[row, 0]:
                    del sums[corrid]
            return {"OUTPUT": out}

        return infer

    simple_config = ModelConfig(
        max_batch_size=8,
        sequence_batcher=SequenceBatcher(
            control_inputs=[
                _control("START", "CONTROL_SEQUENCE_START", int32_false_true=[0, 1]),
                _control("READY", "CONTROL_SEQUENCE_READY", int32_false_true=[0, 1]),
            ]
        ),
    )
    dyna_config = ModelConfig(
        max_batch_size=8,
        sequence_batcher=SequenceBatcher(
            strategy=SequenceBatcherStrategyOldest(max_candidate_sequences=4, max_queue_delay_microseconds=2000),
            max_sequence_idle_microseconds=10_000_000,
            control_inputs=[
                _control("START", "CONTROL_SEQUENCE_START", int32_false_true=[0, 1]),
                _control("END", "CONTROL_SEQUENCE_END", int32_false_true=[0, 1]),
                _control("READY", "CONTROL_SEQUENCE_READY", int32_false_true=[0, 1]),
                _control("CORRID", "CONTROL_SEQUENCE_CORRID", dtype=np.uint64),
            ],
        ),
    )

    def echo(requests):
        return [{"OUTPUT": r["INPUT"]} for r in requests]

    idle_config = ModelConfig(batching=False, sequence_batcher=SequenceBatcher(max_sequence_idle_microseconds=500_000))
    config = TritonConfig(model_repository=repository, allow_metrics=False)
    with running_triton(config) as triton:
        triton.bind("simple_sequence", simple_sequence, *INT_IO, config=simple_config)
        triton.bind("simple_dyna_sequence", [dyna(0), dyna(1)], *INT_IO, config=dyna_config)
        # no batching: the dims are the whole shape the clients send
        idle_io = (
            [Tensor(name="INPUT", dtype=np.int32, shape=(1, 1))],
            [Tensor(name="OUTPUT", dtype=np.int32, shape=(1, 1))],
        )
        triton.bind("idle", echo, *idle_io, config=idle_config)
        yield triton, served_by


def _http(triton) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}", network_timeout=30)


def _grpc(triton) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(f"127.0.0.1:{triton.grpc_port}")


def _inputs(module: Any, value: int, rows: int = 1) -> List[Any]:
    tensor = module.InferInput("INPUT", [rows, 1], "INT32")
    tensor.set_data_from_numpy(np.full((rows, 1), value, dtype=np.int32))
    return [tensor]


def _sync_send(client: Any, module: Any, model: str, sequence_id: SequenceId, values: List[int]) -> List[int]:
    """The examples' sync_send: one request at a time, START on the first, END on the last."""
    results = []
    for count, value in enumerate(values, 1):
        result = client.infer(
            model,
            _inputs(module, value),
            outputs=[module.InferRequestedOutput("OUTPUT")],
            sequence_id=sequence_id,
            sequence_start=count == 1,
            sequence_end=count == len(values),
        )
        results.append(int(result.as_numpy("OUTPUT")[0][0]))
    return results


def _simple_expected(first: int, sign: int) -> List[int]:
    return [first + 1] + [sign * v for v in VALUES]


def _dyna_expected(first: int, sign: int, corrid: int) -> List[int]:
    sums, total = [], 0
    for value in [first] + [sign * v for v in VALUES]:
        total += value
        sums.append(total)
    sums[-1] += corrid
    return sums


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_simple_sequence_sync_clients(server, protocol):
    triton, _ = server
    client, module = (_http(triton), httpclient) if protocol == "http" else (_grpc(triton), grpcclient)
    with client:
        string_id = str(uuid.uuid4())
        assert _sync_send(client, module, "simple_sequence", 1000, [0] + VALUES) == _simple_expected(0, 1)
        assert _sync_send(client, module, "simple_sequence", 1001, [100] + [-v for v in VALUES]) == _simple_expected(
            100, -1
        )
        assert _sync_send(client, module, "simple_sequence", string_id, [20] + [-v for v in VALUES]) == (
            _simple_expected(20, -1)
        )
        # the dyna flavour: Oldest strategy, CORRID control, a string id that is a number
        assert _sync_send(client, module, "simple_dyna_sequence", 1000, [0] + VALUES) == _dyna_expected(0, 1, 1000)
        assert _sync_send(client, module, "simple_dyna_sequence", "1002", [20] + [-v for v in VALUES]) == (
            _dyna_expected(20, -1, 1002)
        )


def _stream_requests(model: str, sequences: List[Tuple[SequenceId, List[int]]], interleave: bool) -> List[Dict]:
    per_sequence = [
        [
            {
                "model_name": model,
                "value": value,
                "request_id": f"{sequence_id}_{count}",
                "sequence_id": sequence_id,
                "sequence_start": count == 1,
                "sequence_end": count == len(values),
            }
            for count, value in enumerate(values, 1)
        ]
        for sequence_id, values in sequences
    ]
    if not interleave:
        return [request for requests in per_sequence for request in requests]
    return [request for group in zip(*per_sequence) for request in group]


def _collect(responses: List[Tuple[str, int]]) -> Dict[str, List[int]]:
    found: Dict[str, List[int]] = {}
    for request_id, value in responses:
        found.setdefault(request_id.rsplit("_", 1)[0], []).append(value)
    return found


SEQUENCES = [
    (1000, [0] + VALUES),
    (1001, [100] + [-v for v in VALUES]),
    ("1002", [20] + [-v for v in VALUES]),
]
DYNA_EXPECTED = {
    "1000": _dyna_expected(0, 1, 1000),
    "1001": _dyna_expected(100, -1, 1001),
    "1002": _dyna_expected(20, -1, 1002),
}


@pytest.mark.parametrize("interleave", [False, True])
def test_grpc_stream_sequences_as_the_stream_client_sends_them(server, interleave):
    triton, served_by = server
    served_by.clear()
    completed: queue.Queue = queue.Queue()

    def callback(result, error):
        completed.put(error if error else (result.get_response().id, int(result.as_numpy("OUTPUT")[0][0])))

    requests = _stream_requests("simple_dyna_sequence", SEQUENCES, interleave)
    with _grpc(triton) as client:
        client.start_stream(callback=callback)
        for request in requests:
            value = request.pop("value")
            client.async_stream_infer(
                inputs=_inputs(grpcclient, value), outputs=[grpcclient.InferRequestedOutput("OUTPUT")], **request
            )
        received = [completed.get(timeout=30) for _ in requests]
        client.stop_stream()
    errors = [item for item in received if isinstance(item, InferenceServerException)]
    assert not errors, errors
    assert _collect(received) == DYNA_EXPECTED
    # every request of a sequence ran on one instance; interleaved sequences were spread over both instances
    instances: Dict[int, set] = {}
    for instance, corrid in served_by:
        instances.setdefault(corrid, set()).add(instance)
    assert sorted(instances) == [1000, 1001, 1002]
    assert all(len(used) == 1 for used in instances.values()), instances
    if interleave:
        assert {next(iter(used)) for used in instances.values()} == {0, 1}


def test_grpc_asyncio_stream_sequences(server):
    triton, _ = server

    async def main() -> List[Any]:
        async def iterator():
            for request in _stream_requests("simple_sequence", SEQUENCES, interleave=True):
                value = request.pop("value")
                yield {
                    **request,
                    "inputs": _inputs(aioclient, value),
                    "outputs": [aioclient.InferRequestedOutput("OUTPUT")],
                }

        out = []
        async with aioclient.InferenceServerClient(f"127.0.0.1:{triton.grpc_port}") as client:
            async for result, error in client.stream_infer(inputs_iterator=iterator(), stream_timeout=30):
                out.append(error if error else (result.get_response().id, int(result.as_numpy("OUTPUT")[0][0])))
                if len(out) == 24:
                    break
        return out

    received = asyncio.run(asyncio.wait_for(main(), 60))
    assert _collect(received) == {
        "1000": _simple_expected(0, 1),
        "1001": _simple_expected(100, -1),
        "1002": _simple_expected(20, -1),
    }


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_python_backend_sequences_interleaved_from_threads(server, protocol):
    """Two sequences, sent at once from two threads, accumulate apart; pb_utils sees correlation_id and flags
    and the bool START control."""
    triton, _ = server
    module = httpclient if protocol == "http" else grpcclient
    results: Dict[SequenceId, Any] = {}

    def run(sequence_id: SequenceId, values: List[int]) -> None:
        client = _http(triton) if protocol == "http" else _grpc(triton)
        with client:
            out = []
            for count, value in enumerate(values, 1):
                result = client.infer(
                    "py_acc",
                    _inputs(module, value),
                    sequence_id=sequence_id,
                    sequence_start=count == 1,
                    sequence_end=count == len(values),
                )
                out.append((int(result.as_numpy("OUTPUT")[0][0]), bool(result.as_numpy("STARTED")[0][0])))
            results[sequence_id] = out

    def successes() -> int:
        with _http(triton) as client:
            stats = client.get_inference_statistics("py_acc")["model_stats"][0]
        return int(stats["inference_stats"]["success"]["count"])

    before = successes()
    threads = [
        threading.Thread(target=run, args=(7, [1, 2, 3, 4])),
        threading.Thread(target=run, args=("s-" + protocol, [10, 20, 30])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results[7] == [(1, True), (3, False), (6, False), (10, False)]
    assert results["s-" + protocol] == [(10, True), (30, False), (60, False)]
    assert successes() - before == 7  # the statistics count sequence requests like any other


def _error(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_sequence_errors_answer_with_tritons_texts(server, protocol):
    triton, _ = server
    module = httpclient if protocol == "http" else grpcclient
    status = "400" if protocol == "http" else "StatusCode.INVALID_ARGUMENT"
    with _http(triton) if protocol == "http" else _grpc(triton) as client:

        def infer(rows: int = 1, **kwargs: Any) -> Any:
            return client.infer("simple_sequence", _inputs(module, 1, rows), **kwargs)

        error = _error(lambda: infer())
        assert error.status() == status
        assert "inference request to model 'simple_sequence' must specify a non-zero or non-empty correlation ID" in (
            error.message()
        )
        error = _error(lambda: infer(sequence_id=4242))
        assert error.status() == status
        assert (
            "inference request for sequence 4242 to model 'simple_sequence' must specify the START flag on the first "
            "request of the sequence" in error.message()
        )
        error = _error(lambda: infer(rows=2, sequence_id=4243, sequence_start=True))
        assert "must specify batch-size 1 due to requirements of sequence batcher" in error.message()
        # a START for an active sequence restarts it (Triton logs the conflict and goes on)
        assert int(infer(sequence_id=4244, sequence_start=True).as_numpy("OUTPUT")[0][0]) == 2
        assert int(infer(sequence_id=4244, sequence_start=True).as_numpy("OUTPUT")[0][0]) == 2
        assert int(infer(sequence_id=4244, sequence_end=True).as_numpy("OUTPUT")[0][0]) == 1
        # after its END the sequence is unknown again
        assert "must specify the START flag" in _error(lambda: infer(sequence_id=4244)).message()
        # a string id that is not a number cannot fill a UINT64 CORRID control
        error = _error(
            lambda: client.infer(
                "simple_dyna_sequence", _inputs(module, 1), sequence_id="not-a-number", sequence_start=True
            )
        )
        assert error.status() == status and "CORRID control (TYPE_UINT64)" in error.message()
        # the server keeps serving
        assert _sync_send(client, module, "simple_sequence", 99, [0, 5]) == [1, 5]


def test_an_idle_sequence_is_released_and_its_slot_reused(server):
    """``max_sequence_idle_microseconds`` (0.5 s here): an idle sequence loses its slot, a later request for it
    fails as an unknown sequence, and a sequence waiting in the backlog gets the slot."""
    triton, _ = server
    with _http(triton) as client:
        assert (
            int(
                client.infer("idle", _inputs(httpclient, 1), sequence_id=1, sequence_start=True).as_numpy("OUTPUT")[0][
                    0
                ]
            )
            == 1
        )
        # the model has one slot (no batching, one instance): sequence 2 waits in the backlog until 1 idles out
        started = time.monotonic()
        result = client.infer("idle", _inputs(httpclient, 2), sequence_id=2, sequence_start=True)
        waited = time.monotonic() - started
        assert int(result.as_numpy("OUTPUT")[0][0]) == 2
        assert waited >= 0.2  # it did wait for the slot (the idle time of sequence 1, less what already passed)
        # end sequence 2 at once: under load a slower next request could let it idle out too
        ended = client.infer("idle", _inputs(httpclient, 4), sequence_id=2, sequence_end=True)
        assert int(ended.as_numpy("OUTPUT")[0][0]) == 4
        error = _error(lambda: client.infer("idle", _inputs(httpclient, 3), sequence_id=1))
        assert error.status() == "400"
        assert (
            "inference request for sequence 1 to model 'idle' must specify the START flag on the first request of "
            "the sequence" in error.message()
        )


def test_config_shows_sequence_batching(server):
    triton, _ = server
    with _http(triton) as client, _grpc(triton) as gclient:
        simple = client.get_model_config("simple_sequence")
        assert "dynamic_batching" not in simple
        section = simple["sequence_batching"]
        assert section["max_sequence_idle_microseconds"] == 1_000_000  # Triton's default, filled in
        assert [c["name"] for c in section["control_input"]] == ["START", "READY"]
        assert section["control_input"][0]["control"][0]["kind"] == "CONTROL_SEQUENCE_START"
        assert section["control_input"][0]["control"][0]["int32_false_true"] == [0, 1]
        dyna = gclient.get_model_config("simple_dyna_sequence", as_json=True)["config"]["sequence_batching"]
        assert dyna["oldest"]["max_candidate_sequences"] == 4
        assert dyna["oldest"]["preferred_batch_size"] == [8]
        assert dyna["control_input"][3]["control"][0]["data_type"] == "TYPE_UINT64"
        py = client.get_model_config("py_acc")["sequence_batching"]
        assert py["oldest"]["max_candidate_sequences"] == 4
        assert py["control_input"][0]["control"][0]["bool_false_true"] == [False, True]
        # control inputs are not model inputs: metadata lists only INPUT
        assert [i["name"] for i in client.get_model_metadata("simple_dyna_sequence")["inputs"]] == ["INPUT"]


def test_bind_refuses_what_the_sequence_batcher_cannot_serve():
    from pytriton_lite.exceptions import PyTritonBadParameterError
    from pytriton_lite.model_config import DynamicBatcher

    def echo(requests):
        return [{"OUTPUT": r["INPUT"]} for r in requests]

    cases = [
        (
            ModelConfig(batcher=DynamicBatcher(max_queue_delay_microseconds=5), sequence_batcher=SequenceBatcher()),
            "exclude each other",
        ),
        (
            ModelConfig(
                sequence_batcher=SequenceBatcher(
                    control_inputs=[
                        _control("S", "CONTROL_SEQUENCE_START", int32_false_true=[0, 1], fp32_false_true=[0, 1])
                    ]
                )
            ),
            "must specify exactly one of",
        ),
        (
            ModelConfig(
                sequence_batcher=SequenceBatcher(
                    control_inputs=[_control("C", "CONTROL_SEQUENCE_CORRID", dtype=np.float32)]
                )
            ),
            "expected TYPE_UINT64, TYPE_INT64, TYPE_UINT32, TYPE_INT32, or TYPE_STRING",
        ),
        (
            ModelConfig(
                sequence_batcher=SequenceBatcher(
                    control_inputs=[_control("INPUT", "CONTROL_SEQUENCE_READY", bool_false_true=[False, True])]
                )
            ),
            "also declared as a model input",
        ),
    ]
    with running_triton(TritonConfig(allow_metrics=False, allow_grpc=False)) as triton:
        for index, (config, message) in enumerate(cases):
            with pytest.raises(PyTritonBadParameterError, match=message):
                triton.bind(f"bad{index}", echo, *INT_IO, config=config)


def _stream_starts(triton, model: str, sequence_ids: List[int]) -> List[Any]:
    completed: queue.Queue = queue.Queue()
    with _grpc(triton) as client:
        client.start_stream(callback=lambda result, error: completed.put(error or result))
        for sequence_id in sequence_ids:
            client.async_stream_infer(
                model, _inputs(grpcclient, sequence_id), sequence_id=sequence_id, sequence_start=True
            )
        received = [completed.get(timeout=30) for _ in sequence_ids]
        client.stop_stream()
    return received


def test_direct_batches_ready_slots_together_and_oldest_uses_preferred_sizes():
    """Direct with minimum_slot_utilization 0.5 of 4 slots waits for a second sequence, then runs both in one
    call; Oldest with preferred size 2 runs two sequences' requests at once and the third after the delay."""
    calls: Dict[str, List[List[int]]] = {"direct": [], "oldest": []}

    def recorder(name: str):
        @batch
        def infer(INPUT, READY):
            calls[name].append(INPUT[:, 0].tolist())
            assert READY.all()
            return {"OUTPUT": INPUT}

        return infer

    ready = _control("READY", "CONTROL_SEQUENCE_READY", int32_false_true=[0, 1])
    direct = SequenceBatcher(
        strategy=SequenceBatcherStrategyDirect(max_queue_delay_microseconds=2_000_000, minimum_slot_utilization=0.5),
        control_inputs=[ready],
    )
    oldest = SequenceBatcher(
        strategy=SequenceBatcherStrategyOldest(preferred_batch_size=[2], max_queue_delay_microseconds=300_000),
        control_inputs=[ready],
    )
    with running_triton(TritonConfig(allow_metrics=False)) as triton:
        triton.bind(
            "direct", recorder("direct"), *INT_IO, config=ModelConfig(max_batch_size=4, sequence_batcher=direct)
        )
        triton.bind(
            "oldest", recorder("oldest"), *INT_IO, config=ModelConfig(max_batch_size=4, sequence_batcher=oldest)
        )
        assert all(not isinstance(r, Exception) for r in _stream_starts(triton, "direct", [11, 12]))
        assert calls["direct"] == [[11, 12]]  # one call, rows in slot order
        assert all(not isinstance(r, Exception) for r in _stream_starts(triton, "oldest", [21, 22, 23]))
        assert calls["oldest"] == [[21, 22], [23]]


def test_a_decoupled_sequence_model_streams_each_request_in_order():
    """An async generator does not release its instance until it ends when the model is a sequence model: the
    next request of the sequence waits for it (the read-modify-write across an await would break otherwise)."""
    sums: Dict[SequenceId, int] = {}

    async def stream(requests):
        (request,) = requests  # a decoupled sequence model gets one request per call
        key = request.correlation_id
        previous = 0 if request["START"][0, 0] else sums[key]
        await asyncio.sleep(0.01)
        sums[key] = previous + int(request["INPUT"][0, 0])
        for factor in (1, 10):
            yield [{"OUTPUT": np.array([[sums[key] * factor]], dtype=np.int32)}]

    config = ModelConfig(
        max_batch_size=4,
        decoupled=True,
        sequence_batcher=SequenceBatcher(
            control_inputs=[_control("START", "CONTROL_SEQUENCE_START", int32_false_true=[0, 1])]
        ),
    )
    completed: queue.Queue = queue.Queue()
    with running_triton(TritonConfig(allow_metrics=False)) as triton:
        triton.bind("dec_seq", stream, *INT_IO, config=config)
        with _grpc(triton) as client:
            client.start_stream(callback=lambda result, error: completed.put(error or result))
            for request in _stream_requests("dec_seq", [(5, [1, 2, 3]), ("five", [4, 5, 6])], interleave=True):
                value = request.pop("value")
                client.async_stream_infer(inputs=_inputs(grpcclient, value), **request)
            received = [completed.get(timeout=30) for _ in range(12)]
            client.stop_stream()
    assert not [r for r in received if isinstance(r, Exception)], received
    found = _collect([(r.get_response().id, int(r.as_numpy("OUTPUT")[0][0])) for r in received])
    assert found == {"5": [1, 10, 3, 30, 6, 60], "five": [4, 40, 9, 90, 15, 150]}
