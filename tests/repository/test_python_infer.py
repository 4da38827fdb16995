"""The python backend's infer callables, called as the core calls them: execute (sync and async), error
mapping, response senders, decoupled streams, cancellation, BLS through a fake LoadContext."""

from __future__ import annotations

import asyncio
import json
import logging

import numpy as np
import pytest
from python_backend_support import FakeContext, call, load, request, write_model

from pytriton_lite.exceptions import InvalidArgumentError, ModelExecutionError, PyTritonUnrecoverableError

HEADER = """
import asyncio
import json
import threading
import time
import numpy as np
import triton_python_backend_utils as pb_utils
from pytriton_lite.exceptions import PyTritonUnrecoverableError
"""

BATCH = 'backend: "python"\nmax_batch_size: 8\n'
DECOUPLED = 'backend: "python"\nmodel_transaction_policy { decoupled: true }\n'


def _load(tmp_path, body, config='backend: "python"', context=None, name="m"):
    write_model(tmp_path, name, HEADER + body)
    return load(tmp_path, name, config, context=context)


def _infer(tmp_path, body, requests, config='backend: "python"', context=None):
    loaded = _load(tmp_path, body, config, context)
    try:
        results = call(loaded.infer_funcs[0], requests)
    finally:
        loaded.finalize()
    for result in results if isinstance(results, list) else []:
        if isinstance(result, BaseException):  # a per-request error: the core fails that request with it
            raise result
    return results


ECHO = """
class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "X")
            info = json.dumps({"params": json.loads(r.parameters()), "outs": r.requested_output_names(),
                               "names": [t.name() for t in r.inputs()], "id": r.request_id(),
                               "cancelled": r.is_cancelled()})
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", x.as_numpy() * 2),
                                                   pb_utils.Tensor("INFO", np.array([info.encode()], dtype=object))]))
        return out
"""


def test_requests_reach_execute_as_pb_utils_requests(tmp_path):
    requests = [
        request({"X": np.array([1.0], np.float32)}, {"tenant": "acme"}, ["Y", "INFO"]),
        request({"X": np.array([2.0], np.float32)}, None, ["Y"]),
    ]
    first, second = _infer(tmp_path, ECHO, requests, BATCH)
    assert first["Y"].tolist() == [2.0] and second["Y"].tolist() == [4.0]
    info = json.loads(first["INFO"][0])
    assert info == {"params": {"tenant": "acme"}, "outs": ["Y", "INFO"], "names": ["X"], "id": "", "cancelled": False}
    assert json.loads(second["INFO"][0])["params"] == {}


ASYNC = """
class TritonPythonModel:
    async def execute(self, requests):
        await asyncio.sleep(0.01)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("Y", np.array([len(requests)]))]) for _ in requests]
"""


def test_async_execute(tmp_path):
    results = _infer(tmp_path, ASYNC, [request({}), request({})], BATCH)
    assert [r["Y"].tolist() for r in results] == [[2], [2]]


RAISES = """
class TritonPythonModel:
    def execute(self, requests):
        kind = pb_utils.get_input_tensor_by_name(requests[0], "KIND").as_numpy()[0].decode()
        if kind == "value":
            raise ValueError("x must be positive")
        if kind == "model":
            raise pb_utils.TritonModelException("model says no")
        if kind == "triton":
            raise pb_utils.TritonError("not here", pb_utils.TritonError.NOT_FOUND)
        if kind == "unrecoverable":
            raise PyTritonUnrecoverableError("stop everything")
        if kind == "not-a-list":
            return pb_utils.InferenceResponse()
        if kind == "too-few":
            return []
        if kind == "not-a-response":
            return [{"Y": 1}]
        if kind == "bad-tensor":
            return [pb_utils.InferenceResponse(["Y"])]
        error = pb_utils.TritonError("bad input", pb_utils.TritonError.INVALID_ARG if kind == "invalid" else 1)
        return [pb_utils.InferenceResponse(error=error)]
"""


def _kind(kind):
    return request({"KIND": np.array([kind.encode()], dtype=object)})


def test_exception_in_execute_is_a_500_with_the_models_frames(tmp_path, caplog):
    with pytest.raises(ModelExecutionError) as info:
        _infer(tmp_path, RAISES, [_kind("value")])
    error = info.value
    assert error.http_status == 500 and error.grpc_code == "INTERNAL"
    assert error.message.startswith(
        "Failed to process the request(s) for model 'm_0', message: ValueError: x must be positive\n\nAt:\n"
    )
    assert "model.py(" in error.message and "): execute" in error.message
    assert "x must be positive" in caplog.text


@pytest.mark.parametrize(
    ("kind", "cls", "http", "text"),
    [
        ("model", ModelExecutionError, 500, "TritonModelException: model says no"),
        ("triton", ModelExecutionError, 404, "not here"),
        ("invalid", InvalidArgumentError, 400, "bad input"),
        ("internal", ModelExecutionError, 500, "bad input"),
        ("not-a-list", ModelExecutionError, 500, "Expected a list in the execute return"),
        ("too-few", ModelExecutionError, 500, "InferenceRequest(s) size is:1, and InferenceResponse(s) size is:0"),
        ("not-a-response", ModelExecutionError, 500, "Expected an 'InferenceResponse' object"),
        ("bad-tensor", ModelExecutionError, 500, "must hold pb_utils.Tensor objects"),
        ("unrecoverable", PyTritonUnrecoverableError, 500, "stop everything"),
    ],
)
def test_errors_map_to_statuses(tmp_path, kind, cls, http, text):
    with pytest.raises(cls) as info:
        _infer(tmp_path, RAISES, [_kind(kind)])
    assert info.value.http_status == http
    assert text in str(info.value)


MIXED = """
class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "X").as_numpy()
            if x[0] < 0:
                out.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    "X must be >= 0", pb_utils.TritonError.INVALID_ARG)))
            else:
                out.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", x)]))
        return out
"""


def test_errors_in_a_batch_fail_only_their_requests(tmp_path):
    loaded = _load(tmp_path, MIXED, BATCH)
    func = loaded.infer_funcs[0]
    bad, good = request({"X": np.array([-1])}), request({"X": np.array([1])})
    results = call(func, [good, bad])
    assert isinstance(results[1], InvalidArgumentError) and "X must be >= 0" in str(results[1])
    assert results[0]["Y"].tolist() == [1]
    assert all(isinstance(r, InvalidArgumentError) for r in call(func, [bad, bad]))
    loaded.finalize()


SENDER_NOT_DECOUPLED = """
class TritonPythonModel:
    def execute(self, requests):
        def answer(request, value):
            time.sleep(0.02)
            sender = request.get_response_sender()
            sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("Y", np.array([value]))]))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        first, second = requests
        threading.Thread(target=answer, args=(first, 1)).start()
        if pb_utils.get_input_tensor_by_name(first, "ALL") is not None:
            threading.Thread(target=answer, args=(second, 2)).start()
            return None
        return [None, pb_utils.InferenceResponse([pb_utils.Tensor("Y", np.array([2]))])]
"""


@pytest.mark.parametrize("all_via_sender", [False, True])
def test_non_decoupled_model_answering_through_senders(tmp_path, all_via_sender):
    first = request({"ALL": np.array([1])} if all_via_sender else {})
    results = _infer(tmp_path, SENDER_NOT_DECOUPLED, [first, request({})], BATCH)
    assert [r["Y"].tolist() for r in results] == [[1], [2]]


# --- decoupled ------------------------------------------------------------------------------------------

REPEAT = """
class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            n = int(pb_utils.get_input_tensor_by_name(request, "N").as_numpy()[0])
            threading.Thread(target=self.respond, args=(request.get_response_sender(), n)).start()
        return None

    def respond(self, sender, n):
        for i in range(n):
            sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([i], np.int32))]))
        if n == 99:
            sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError("stream broke")),
                        flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        else:
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
"""


def test_decoupled_responses_from_another_thread(tmp_path):
    items = _infer(tmp_path, REPEAT, [request({"N": np.array([3])})], DECOUPLED)
    assert [[outputs["OUT"].tolist()] for [outputs] in items] == [[[0]], [[1]], [[2]]]


def test_decoupled_final_flag_alone_ends_an_empty_stream(tmp_path):
    assert _infer(tmp_path, REPEAT, [request({"N": np.array([0])})], DECOUPLED) == []


def test_decoupled_error_response_fails_the_stream(tmp_path):
    with pytest.raises(ModelExecutionError, match="stream broke"):
        _infer(tmp_path, REPEAT, [request({"N": np.array([99])})], DECOUPLED)


SYNC_IN_EXECUTE = """
class TritonPythonModel:
    def execute(self, requests):
        sender = requests[0].get_response_sender()
        sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([7]))]),
                    flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        if pb_utils.get_input_tensor_by_name(requests[0], "RETURN") is not None:
            return [pb_utils.InferenceResponse()]
"""


def test_decoupled_execute_must_return_none(tmp_path):
    assert len(_infer(tmp_path, SYNC_IN_EXECUTE, [request({})], DECOUPLED)) == 1
    with pytest.raises(ModelExecutionError, match="using the decoupled mode and the execute function must return None"):
        _infer(tmp_path, SYNC_IN_EXECUTE, [request({"RETURN": np.array([1])})], DECOUPLED)


def test_decoupled_batches_hold_one_request(tmp_path):
    with pytest.raises(ModelExecutionError, match="got 2 requests in one batch"):
        _infer(tmp_path, SYNC_IN_EXECUTE, [request({}), request({})], DECOUPLED)


ASYNC_STREAM = """
class TritonPythonModel:
    async def execute(self, requests):
        sender = requests[0].get_response_sender()
        n = int(pb_utils.get_input_tensor_by_name(requests[0], "N").as_numpy()[0])
        for i in range(n):
            sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([i]))]))
            await asyncio.sleep(0.01)
        if n == 5:
            raise RuntimeError("async execute failed")
        if n == 6:
            return []
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
"""


def test_async_decoupled_streams_while_execute_runs(tmp_path):
    loaded = _load(tmp_path, ASYNC_STREAM, DECOUPLED)
    stream = loaded.infer_funcs[0]([request({"N": np.array([3])})])

    async def first_then_rest():
        first = await stream.__anext__()  # arrives before execute finished
        rest = [item async for item in stream]
        return [first, *rest]

    items = asyncio.run(first_then_rest())
    assert [outputs["OUT"].tolist() for [outputs] in items] == [[0], [1], [2]]
    with pytest.raises(ModelExecutionError, match="RuntimeError: async execute failed"):
        call(loaded.infer_funcs[0], [request({"N": np.array([5])})])
    with pytest.raises(ModelExecutionError, match="must return None"):
        call(loaded.infer_funcs[0], [request({"N": np.array([6])})])
    loaded.finalize()


CANCEL = """
SEEN = []

class TritonPythonModel:
    def execute(self, requests):
        request = requests[0]
        sender = request.get_response_sender()
        def run():
            i = 0
            while not sender.is_cancelled() and i < 500:
                sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([i]))]))
                i += 1
                time.sleep(0.005)
            SEEN.append((sender.is_cancelled(), request.is_cancelled()))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        self.thread = threading.Thread(target=run)
        self.thread.start()
"""


def test_a_closed_stream_tells_the_sender_it_is_cancelled(tmp_path):
    loaded = _load(tmp_path, CANCEL, DECOUPLED)
    instance = loaded.infer_funcs[0].__self__
    stream = loaded.infer_funcs[0]([request({})])

    async def take_two():
        items = [await stream.__anext__(), await stream.__anext__()]
        await stream.aclose()
        return items

    assert len(asyncio.run(take_two())) == 2
    instance.model.thread.join(10)
    assert sys_module(instance).SEEN == [(True, True)]
    loaded.finalize()


def sys_module(instance):
    import sys

    return sys.modules[f"{instance.namespace.package}.model"]


# --- BLS ------------------------------------------------------------------------------------------------

BLS = """
class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            mode = pb_utils.get_input_tensor_by_name(request, "MODE").as_numpy()[0].decode()
            x = pb_utils.Tensor("X", np.array([3.0], np.float32))
            bls = pb_utils.InferenceRequest(model_name="double", requested_output_names=["Y"], inputs=[x],
                                            request_id="bls-1", model_version=2, timeout=1000,
                                            parameters={"via": "bls"})
            if mode == "thread":
                box = []
                thread = threading.Thread(target=lambda: box.append(
                    pb_utils.InferenceRequest(model_name="double", requested_output_names=[], inputs=[x]).exec()))
                thread.start()
                thread.join()
                response = box[0]
            elif mode == "missing":
                response = pb_utils.InferenceRequest(model_name="nope", requested_output_names=[], inputs=[]).exec()
                code = response.error().code()
                return [pb_utils.InferenceResponse(error=pb_utils.TritonError(response.error().message(), code))]
            elif mode == "stream":
                items = list(pb_utils.InferenceRequest(model_name="count", requested_output_names=["C"],
                                                       inputs=[x]).exec(decoupled=True))
                y = np.concatenate([pb_utils.get_output_tensor_by_name(i, "C").as_numpy() for i in items])
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", y)]))
                continue
            elif mode == "stream-missing":
                [item] = pb_utils.InferenceRequest(model_name="nope", requested_output_names=[],
                                                   inputs=[]).exec(decoupled=True)
                raise pb_utils.TritonModelException(item.error().message())
            else:
                response = bls.exec()
            if response.has_error():
                raise pb_utils.TritonModelException(response.error().message())
            responses.append(pb_utils.InferenceResponse([pb_utils.get_output_tensor_by_name(response, "Y")]))
        return responses
"""


def _double(req):
    return {"Y": req.inputs["X"] * 2}


def _count(req):
    return [{"C": np.array([i], np.float32)} for i in range(int(req.inputs["X"][0]))]


def _bls(tmp_path, mode, body=BLS):
    context = FakeContext({"double": _double}, {"count": _count})
    [outputs] = _infer(tmp_path, body, [request({"MODE": np.array([mode.encode()], dtype=object)})], context=context)
    return outputs, context


def test_bls_exec(tmp_path):
    outputs, context = _bls(tmp_path, "sync")
    assert outputs["Y"].tolist() == [6.0]
    [sent] = context.calls
    assert (sent.model_name, sent.model_version, sent.requested_outputs, sent.id) == ("double", "2", ["Y"], "bls-1")
    assert (sent.timeout_us, sent.parameters) == (1000, {"via": "bls"})


def test_bls_from_a_thread_the_model_started(tmp_path):
    outputs, context = _bls(tmp_path, "thread")
    assert outputs["Y"].tolist() == [6.0]
    assert context.calls[0].model_version == "" and context.calls[0].requested_outputs is None


def test_bls_error_comes_back_as_an_error_response(tmp_path):
    with pytest.raises(ModelExecutionError, match="Request for unknown model: 'nope' is not found") as info:
        _bls(tmp_path, "missing")
    assert info.value.http_status == 404


def test_bls_decoupled(tmp_path):
    outputs, _ = _bls(tmp_path, "stream")
    assert outputs["Y"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ModelExecutionError, match="unknown model: 'nope'"):
        _bls(tmp_path, "stream-missing")


ASYNC_BLS = """
class TritonPythonModel:
    async def execute(self, requests):
        x = pb_utils.Tensor("X", np.array([2.0], np.float32))
        calls = [pb_utils.InferenceRequest(model_name="double", requested_output_names=["Y"], inputs=[x]).async_exec()
                 for _ in range(3)]
        streams = pb_utils.InferenceRequest(model_name="count", requested_output_names=["C"], inputs=[x])
        missing = pb_utils.InferenceRequest(model_name="nope", requested_output_names=[], inputs=[])
        results = await asyncio.gather(*calls, streams.async_exec(decoupled=True), missing.async_exec(),
                                       missing.async_exec(decoupled=True))
        ys = [pb_utils.get_output_tensor_by_name(r, "Y").as_numpy()[0] for r in results[:3]]
        counted = [pb_utils.get_output_tensor_by_name(r, "C").as_numpy()[0] for r in results[3]]
        errors = [results[4].has_error(), next(iter(results[5])).has_error()]
        info = json.dumps([float(v) for v in ys + counted] + errors)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("INFO", np.array([info.encode()], dtype=object))])]
"""


def test_bls_async_exec(tmp_path):
    outputs, _ = _bls(tmp_path, "", ASYNC_BLS)
    assert json.loads(outputs["INFO"][0]) == [4.0, 4.0, 4.0, 0.0, 1.0, True, True]


def test_bls_with_one_server_and_no_binding(tmp_path):
    from pytriton_lite.pb_utils import _bls as bls

    loaded = _load(tmp_path, ECHO, context=FakeContext({"double": _double}))
    try:
        made = bls_request()
        assert made.exec().output_tensors()[0].as_numpy().tolist() == [2.0]  # the only context there is
    finally:
        loaded.finalize()
    assert bls._BY_TOKEN == {}


def bls_request():
    import triton_python_backend_utils as pb_utils

    x = pb_utils.Tensor("X", np.array([1.0], np.float32))
    return pb_utils.InferenceRequest(model_name="double", requested_output_names=["Y"], inputs=[x])


def test_logger_records_point_at_the_model(tmp_path, caplog):
    body = """
class TritonPythonModel:
    def execute(self, requests):
        pb_utils.Logger.log_warn("from the model")
        return [pb_utils.InferenceResponse() for _ in requests]
"""
    caplog.set_level(logging.INFO)
    _infer(tmp_path, body, [request({})])
    [record] = [r for r in caplog.records if r.getMessage() == "from the model"]
    assert record.filename == "model.py" and record.levelno == logging.WARNING
