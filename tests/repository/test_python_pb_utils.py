"""``triton_python_backend_utils``: the surface model.py files use, on its own (no server)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import numpy as np
import pytest

import triton_python_backend_utils as pb_utils
from pytriton_lite import pb_utils as impl
from pytriton_lite.exceptions import InvalidArgumentError, ModelExecutionError, ModelNotFoundError, UnavailableError
from pytriton_lite.pb_utils._errors import from_exception, to_inference_error
from pytriton_lite.pb_utils._request import ResponseQueue
from pytriton_lite.types import Request


def test_top_level_module_re_exports_the_implementation():
    assert pb_utils.__all__ == impl.__all__
    for name in impl.__all__:
        assert getattr(pb_utils, name) is getattr(impl, name), name
    for name in (
        "Tensor",
        "InferenceRequest",
        "InferenceResponse",
        "InferenceResponseSender",
        "TritonError",
        "TritonModelException",
        "ModelConfig",
        "Logger",
        "get_input_tensor_by_name",
        "get_output_tensor_by_name",
        "get_input_config_by_name",
        "get_output_config_by_name",
        "triton_string_to_numpy",
        "numpy_to_triton_type",
        "triton_to_numpy_type",
        "serialize_byte_tensor",
        "deserialize_bytes_tensor",
        "using_decoupled_model_transaction_policy",
    ):
        assert name in pb_utils.__all__


def test_flag_constants():
    assert pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL == 1
    assert pb_utils.TRITONSERVER_REQUEST_FLAG_SEQUENCE_START == 1
    assert pb_utils.TRITONSERVER_REQUEST_FLAG_SEQUENCE_END == 2
    assert pb_utils.TRITONSERVER_REQUEST_RELEASE_ALL == 1
    assert pb_utils.TRITONSERVER_REQUEST_RELEASE_RESCHEDULE == 2


# --- Tensor ---------------------------------------------------------------------------------------------


def test_tensor_accessors():
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    tensor = pb_utils.Tensor("OUT", data)
    assert tensor.name() == "OUT"
    assert tensor.as_numpy() is data
    assert tensor.shape() == [2, 3]
    assert tensor.triton_dtype() == 11
    assert tensor.is_cpu()
    assert "OUT" in repr(tensor)


def test_tensor_from_a_list_and_bytes():
    assert pb_utils.Tensor("X", [1, 2]).as_numpy().tolist() == [1, 2]
    text = pb_utils.Tensor("T", np.array([b"a", b"bc"], dtype=np.object_))
    assert text.triton_dtype() == 13
    assert pb_utils.Tensor("S", np.array(["x"])).triton_dtype() == 13


def test_tensor_refuses_bad_names_and_dtypes():
    with pytest.raises(TypeError):
        pb_utils.Tensor(3, np.zeros(1))  # type: ignore[arg-type]
    with pytest.raises(pb_utils.TritonModelException, match="unsupported numpy dtype"):
        pb_utils.Tensor("C", np.zeros(2, dtype=np.complex64))


def test_tensor_dlpack_round_trip():
    data = np.arange(4, dtype=np.int32)
    tensor = pb_utils.Tensor("IN", data)
    assert tensor.__dlpack_device__() == (1, 0)
    back = pb_utils.Tensor.from_dlpack("IN2", tensor.to_dlpack())
    assert back.name() == "IN2"
    np.testing.assert_array_equal(back.as_numpy(), data)
    again = pb_utils.Tensor.from_dlpack("IN3", tensor)  # any object with __dlpack__
    np.testing.assert_array_equal(again.as_numpy(), data)
    assert np.shares_memory(again.as_numpy(), data)


def test_tensor_dlpack_with_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.dlpack import from_dlpack, to_dlpack

    tensor = pb_utils.Tensor("IN", np.arange(3, dtype=np.float32))
    np.testing.assert_array_equal(from_dlpack(tensor.to_dlpack()).numpy(), [0, 1, 2])
    made = pb_utils.Tensor.from_dlpack("OUT", to_dlpack(torch.tensor([4.0, 5.0])))
    np.testing.assert_array_equal(made.as_numpy(), [4.0, 5.0])
    bf16 = pb_utils.Tensor.from_dlpack("B", torch.tensor([1.5, 2.0], dtype=torch.bfloat16))
    assert bf16.triton_dtype() == 14
    np.testing.assert_array_equal(bf16.as_numpy().astype(np.float32), [1.5, 2.0])


def test_tensor_dlpack_refuses_bytes_and_garbage():
    with pytest.raises(pb_utils.TritonModelException, match="BYTES"):
        pb_utils.Tensor("T", np.array([b"a"], dtype=np.object_)).to_dlpack()
    with pytest.raises(pb_utils.TritonModelException, match="cannot read the DLPack tensor"):
        pb_utils.Tensor.from_dlpack("X", object())


# --- datatypes and bytes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "config_name", "np_type"),
    [
        (1, "TYPE_BOOL", np.bool_),
        (2, "TYPE_UINT8", np.uint8),
        (5, "TYPE_UINT64", np.uint64),
        (6, "TYPE_INT8", np.int8),
        (9, "TYPE_INT64", np.int64),
        (10, "TYPE_FP16", np.float16),
        (11, "TYPE_FP32", np.float32),
        (12, "TYPE_FP64", np.float64),
        (13, "TYPE_STRING", np.object_),
    ],
)
def test_type_helpers(code, config_name, np_type):
    assert pb_utils.triton_to_numpy_type(code) is np_type
    assert pb_utils.numpy_to_triton_type(np_type) == code
    expected = bool if config_name == "TYPE_BOOL" else np_type  # Triton's table says bool
    assert pb_utils.triton_string_to_numpy(config_name) is expected


def test_type_helpers_edge_cases():
    assert pb_utils.numpy_to_triton_type(np.bytes_) == 13
    assert pb_utils.numpy_to_triton_type(np.dtype("float32")) == 11
    assert pb_utils.numpy_to_triton_type(np.complex64) is None
    assert pb_utils.numpy_to_triton_type("not a dtype") is None
    assert pb_utils.triton_to_numpy_type(99) is None
    with pytest.raises(KeyError):
        pb_utils.triton_string_to_numpy("TYPE_FLOAT32")


def test_serialize_and_deserialize_bytes():
    data = np.array([[b"ab", "c\u00e9"], [b"", b"\x00z"]], dtype=np.object_)
    encoded = pb_utils.serialize_byte_tensor(data)
    assert encoded == b"\x02\x00\x00\x00ab\x03\x00\x00\x00c\xc3\xa9\x00\x00\x00\x00\x02\x00\x00\x00\x00z"
    decoded = pb_utils.deserialize_bytes_tensor(encoded)
    assert decoded.dtype == np.object_
    assert decoded.tolist() == [b"ab", "c\u00e9".encode(), b"", b"\x00z"]
    assert (
        pb_utils.serialize_byte_tensor(np.array([b"x", b"yz"], dtype=np.bytes_))
        == b"\x01\x00\x00\x00x\x02\x00\x00\x00yz"
    )
    assert pb_utils.serialize_byte_tensor(np.array([], dtype=np.object_)) == ()
    assert pb_utils.serialize_byte_tensor(np.zeros(2, dtype=np.float32)) is None
    assert pb_utils.deserialize_bytes_tensor(b"").shape == (0,)


# --- errors ----------------------------------------------------------------------------------------------


def test_triton_error_codes_and_accessors():
    error = pb_utils.TritonError("boom")
    assert error.message() == "boom"
    assert error.code() == pb_utils.TritonError.INTERNAL
    codes = ["UNKNOWN", "INTERNAL", "NOT_FOUND", "INVALID_ARG", "UNAVAILABLE", "UNSUPPORTED", "ALREADY_EXISTS"]
    assert [getattr(pb_utils.TritonError, c) for c in codes + ["CANCELLED"]] == list(range(8))
    assert pb_utils.TritonError("x", pb_utils.TritonError.NOT_FOUND).code() is pb_utils.TritonError.NOT_FOUND
    assert "NOT_FOUND" in repr(pb_utils.TritonError("x", pb_utils.TritonError.NOT_FOUND))
    with pytest.raises(TypeError):
        pb_utils.TritonError(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "cls", "http", "grpc"),
    [
        ("INVALID_ARG", InvalidArgumentError, 400, "INVALID_ARGUMENT"),
        ("INTERNAL", ModelExecutionError, 500, "INTERNAL"),
        ("NOT_FOUND", ModelExecutionError, 404, "NOT_FOUND"),
        ("UNAVAILABLE", ModelExecutionError, 503, "UNAVAILABLE"),
        ("UNSUPPORTED", ModelExecutionError, 501, "UNIMPLEMENTED"),
        ("UNKNOWN", ModelExecutionError, 400, "UNKNOWN"),
        ("ALREADY_EXISTS", ModelExecutionError, 400, "ALREADY_EXISTS"),
        ("CANCELLED", ModelExecutionError, 400, "CANCELLED"),
    ],
)
def test_triton_error_to_status(code, cls, http, grpc):
    error = to_inference_error(pb_utils.TritonError("msg", getattr(pb_utils.TritonError, code)))
    assert type(error) is cls
    assert (error.http_status, error.grpc_code, error.message) == (http, grpc, "msg")


def test_exceptions_to_triton_error():
    assert from_exception(ModelNotFoundError("gone")).code() is pb_utils.TritonError.NOT_FOUND
    assert from_exception(UnavailableError("busy")).code() is pb_utils.TritonError.UNAVAILABLE
    assert from_exception(InvalidArgumentError("bad")).code() is pb_utils.TritonError.INVALID_ARG
    other = from_exception(ValueError("odd"))
    assert (other.code(), other.message()) == (pb_utils.TritonError.INTERNAL, "ValueError: odd")
    same = pb_utils.TritonError("x")
    assert from_exception(same) is same


# --- requests, responses, senders ------------------------------------------------------------------------


def _received(data, parameters=None, outputs=("OUT",), decoupled=False):
    core = Request(data=data, parameters=parameters, requested_output_names=list(outputs))
    return pb_utils.InferenceRequest._incoming(core, "m", decoupled)


def test_received_request():
    data = {"A": np.array([1.0], np.float32), "B": np.array([2], np.int64)}
    received = _received(data, {"tenant": "acme", "n": 3})
    assert [t.name() for t in received.inputs()] == ["A", "B"]
    assert pb_utils.get_input_tensor_by_name(received, "B").as_numpy() is data["B"]
    assert pb_utils.get_input_tensor_by_name(received, "C") is None
    assert json.loads(received.parameters()) == {"tenant": "acme", "n": 3}
    assert received.requested_output_names() == ["OUT"]
    assert (received.request_id(), received.correlation_id(), received.flags(), received.timeout()) == ("", 0, 0, 0)
    assert not received.is_cancelled()
    assert json.loads(_received({}).parameters()) == {}


def test_received_request_reads_what_the_core_request_carries():
    core = Request(data={}, parameters=None)
    core.id = "r-7"  # type: ignore[attr-defined]
    core.correlation_id = 42  # type: ignore[attr-defined]
    core.timeout_us = 1000  # type: ignore[attr-defined]
    received = pb_utils.InferenceRequest._incoming(core, "m", False)
    assert (received.request_id(), received.correlation_id(), received.timeout()) == ("r-7", 42, 1000)


def test_get_input_tensor_by_name_after_inputs_and_on_other_objects():
    received = _received({"A": np.zeros(1)})
    tensors = received.inputs()
    assert pb_utils.get_input_tensor_by_name(received, "A") is tensors[0]
    assert pb_utils.get_input_tensor_by_name(received, "Z") is None

    class Duck:
        def inputs(self):
            return tensors

    assert pb_utils.get_input_tensor_by_name(Duck(), "A") is tensors[0]
    assert pb_utils.get_input_tensor_by_name(Duck(), "Z") is None


def test_bls_request_fields():
    made = pb_utils.InferenceRequest(
        model_name="other",
        inputs=[pb_utils.Tensor("X", np.zeros(2))],
        requested_output_names=["Y"],
        request_id="7",
        correlation_id="seq-1",
        flags=pb_utils.TRITONSERVER_REQUEST_FLAG_SEQUENCE_START,
        timeout=5,
        parameters={"k": "v", "b": True},
        preferred_memory=pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_CPU, 0),
    )
    assert (made.request_id(), made.correlation_id(), made.flags(), made.timeout()) == ("7", "seq-1", 1, 5)
    assert json.loads(made.parameters()) == {"k": "v", "b": True}
    assert made.requested_output_names() == ["Y"]
    made.set_flags(3)
    assert made.flags() == 3
    assert "other" in repr(made)
    with pytest.raises(pb_utils.TritonModelException, match="only for requests a model received"):
        made.get_response_sender()


def test_bls_request_validation():
    with pytest.raises(pb_utils.TritonModelException, match="Correlation ID"):
        pb_utils.InferenceRequest(model_name="m", correlation_id=1.5)  # type: ignore[arg-type]
    with pytest.raises(pb_utils.TritonModelException, match="bool/int/str"):
        pb_utils.InferenceRequest(model_name="m", parameters={"k": [1]})
    with pytest.raises(pb_utils.TritonModelException, match="keys"):
        pb_utils.InferenceRequest(model_name="m", parameters={1: "v"})  # type: ignore[dict-item]
    with pytest.raises(pb_utils.TritonModelException, match="must be a dict"):
        pb_utils.InferenceRequest(model_name="m", parameters=[("k", "v")])  # type: ignore[arg-type]
    with pytest.raises(pb_utils.TritonModelException, match="BLS"):
        pb_utils.InferenceRequest(model_name="m").exec()  # no server anywhere


def test_release_flags():
    received = _received({})
    received.set_release_flags(pb_utils.TRITONSERVER_REQUEST_RELEASE_ALL)
    with pytest.raises(pb_utils.TritonModelException, match="iterative_sequence"):
        received.set_release_flags(pb_utils.TRITONSERVER_REQUEST_RELEASE_RESCHEDULE)


def test_response_accessors():
    out = pb_utils.Tensor("OUT", np.ones(2))
    response = pb_utils.InferenceResponse([out], parameters={"p": 1})
    assert response.output_tensors() == [out]
    assert not response.has_error() and response.error() is None
    assert json.loads(response.parameters()) == {"p": 1}
    assert pb_utils.get_output_tensor_by_name(response, "OUT") is out
    assert pb_utils.get_output_tensor_by_name(response, "NOPE") is None
    failed = pb_utils.InferenceResponse(error=pb_utils.TritonError("bad", pb_utils.TritonError.INVALID_ARG))
    assert failed.has_error() and failed.error().message() == "bad"
    assert failed.output_tensors() == []
    assert "bad" in repr(failed) and "OUT" in repr(response)
    with pytest.raises(TypeError):
        pb_utils.InferenceResponse(error="bad")  # type: ignore[arg-type]
    with pytest.raises(pb_utils.TritonModelException):
        pb_utils.InferenceResponse(["x"])._outputs()  # type: ignore[list-item]


def test_response_iterator_cancel():
    responses = [pb_utils.InferenceResponse(), pb_utils.InferenceResponse()]
    iterator = pb_utils.ResponseIterator(responses)
    assert iter(iterator) is iterator
    assert next(iterator) is responses[0]
    iterator.cancel()
    assert list(iterator) == []


def test_sender_rules_decoupled():
    received = _received({}, decoupled=True)
    sender = received.get_response_sender()
    response = pb_utils.InferenceResponse()
    with pytest.raises(pb_utils.TritonModelException, match="must be provided"):
        sender.send()
    with pytest.raises(pb_utils.TritonModelException, match="Unsupported flag"):
        sender.send(response, flags=4)
    with pytest.raises(TypeError):
        sender.send("nope")  # type: ignore[arg-type]
    sender.send(response)
    sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
    with pytest.raises(pb_utils.TritonModelException, match="has been closed"):
        sender.send(response)
    assert not sender.is_cancelled()


def test_sender_rules_not_decoupled():
    sender = _received({}).get_response_sender()
    with pytest.raises(pb_utils.TritonModelException, match="complete final before"):
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
    sender.send(pb_utils.InferenceResponse())
    with pytest.raises(pb_utils.TritonModelException, match="more than one response"):
        sender.send(pb_utils.InferenceResponse())
    sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)


def test_response_queue_wakes_a_reader_from_another_thread():
    queue = ResponseQueue(decoupled=True)

    async def read():
        items = []
        while True:
            response, flags = await queue.get()
            items.append(response)
            if flags:
                return items

    def produce():
        for _ in range(50):
            queue.send(pb_utils.InferenceResponse(), 0)
        queue.send(None, pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    async def main():
        reader = asyncio.ensure_future(read())
        await asyncio.sleep(0.01)
        thread = threading.Thread(target=produce)
        thread.start()
        items = await asyncio.wait_for(reader, 10)
        thread.join()
        return items

    items = asyncio.run(main())
    assert len(items) == 51 and items[-1] is None


def test_response_queue_cancel_drops_later_sends():
    queue = ResponseQueue(decoupled=True)
    queue.send(pb_utils.InferenceResponse(), 0)
    queue.cancel()
    queue.send(pb_utils.InferenceResponse(), 0)  # reaches nobody, no error
    assert queue.cancelled and not queue._items


# --- model config helpers --------------------------------------------------------------------------------

CONFIG = {
    "name": "m",
    "max_batch_size": 4,
    "input": [{"name": "IN", "data_type": "TYPE_FP32", "dims": [3], "optional": False}],
    "output": [{"name": "OUT", "data_type": "TYPE_INVALID", "dims": []}],
}


def _config():
    return pb_utils.ModelConfig(json.dumps(CONFIG))


def test_config_lookups():
    assert pb_utils.get_input_config_by_name(CONFIG, "IN")["dims"] == [3]
    assert pb_utils.get_input_config_by_name(CONFIG, "OUT") is None
    assert pb_utils.get_output_config_by_name(CONFIG, "OUT")["name"] == "OUT"
    assert pb_utils.get_output_config_by_name({}, "OUT") is None
    assert not pb_utils.using_decoupled_model_transaction_policy(CONFIG)
    assert pb_utils.using_decoupled_model_transaction_policy({"model_transaction_policy": {"decoupled": True}})


def test_model_config_add_and_complete_tensors():
    config = _config()
    config.add_input({"name": "IN", "data_type": "TYPE_FP32", "dims": [3]})  # same: nothing changes
    config.add_input({"name": "EXTRA", "data_type": "TYPE_INT32", "dims": [1], "optional": True})
    config.add_output({"name": "OUT", "data_type": "TYPE_FP32", "dims": [3]})  # completes the declared one
    data = config.as_dict()
    assert [t["name"] for t in data["input"]] == ["IN", "EXTRA"]
    assert data["output"] == [{"name": "OUT", "data_type": "TYPE_FP32", "dims": [3]}]


@pytest.mark.parametrize(
    ("kind", "tensor", "match"),
    [
        ("input", {"name": "IN", "data_type": "TYPE_INT8", "dims": [3]}, "expects datatype TYPE_FP32"),
        ("input", {"name": "IN", "data_type": "TYPE_FP32", "dims": [4]}, "expects dims"),
        ("input", {"name": "IN", "data_type": "TYPE_FP32", "dims": [3], "optional": True}, "optional"),
        ("input", {"name": "X", "data_type": "TYPE_FP32"}, "missing 'dims'"),
        ("input", {"data_type": "TYPE_FP32", "dims": [1]}, "missing 'name'"),
        ("input", {"name": "X", "dims": [1]}, "missing 'data_type'"),
        ("input", {"name": "X", "data_type": "TYPE_FP32", "dims": [1], "format": "x"}, "other than"),
        ("output", {"name": "X", "data_type": "TYPE_FP32", "dims": [1], "optional": True}, "other than"),
    ],
)
def test_model_config_tensor_conflicts(kind, tensor, match):
    config = _config()
    with pytest.raises(ValueError, match=match):
        getattr(config, f"add_{kind}")(tensor)


def test_model_config_batching_and_policy():
    config = _config()
    with pytest.raises(ValueError, match="specified max_batch_size 4"):
        config.set_max_batch_size(2)
    config.set_max_batch_size(8)
    config.set_dynamic_batching()
    config.set_dynamic_batching()
    config.set_model_transaction_policy({"decoupled": True})
    config.set_model_transaction_policy({})
    with pytest.raises(ValueError, match="already set"):
        config.set_model_transaction_policy({"decoupled": False})
    with pytest.raises(ValueError, match="other than 'decoupled'"):
        config.set_model_transaction_policy({"stream": True})
    data = config.as_dict()
    assert data["max_batch_size"] == 8 and data["dynamic_batching"] == {}
    assert data["model_transaction_policy"] == {"decoupled": True}
    sequence = pb_utils.ModelConfig({"name": "s", "sequence_batching": {}})
    with pytest.raises(ValueError, match="sequence_batching"):
        sequence.set_dynamic_batching()
    assert sequence.as_dict()["input"] == [] and sequence.as_dict()["max_batch_size"] == 0


# --- logger and the unsupported model-loading API --------------------------------------------------------


def test_logger_writes_python_logging(caplog):
    caplog.set_level(logging.DEBUG, logger="pytriton_lite.pb_utils")
    logger = pb_utils.Logger
    logger.log_info("i")
    logger.log_warn("w")
    logger.log_error("e")
    logger.log_verbose("v")
    logger.log("x", logger.ERROR)
    logger.log("y")
    got = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "pytriton_lite.pb_utils"]
    assert got == [
        (logging.INFO, "i"),
        (logging.WARNING, "w"),
        (logging.ERROR, "e"),
        (logging.DEBUG, "v"),
        (logging.ERROR, "x"),
        (logging.INFO, "y"),
    ]
    assert all(r.filename == "test_python_pb_utils.py" for r in caplog.records)
    assert pb_utils.Logger.LogLevel.VERBOSE == pb_utils.Logger.VERBOSE


@pytest.mark.parametrize(
    ("func", "args"),
    [(pb_utils.load_model, ("m",)), (pb_utils.unload_model, ("m",)), (pb_utils.is_model_ready, ("m",))],
)
def test_model_loading_api_says_unsupported(func, args):
    with pytest.raises(pb_utils.TritonModelException, match="not supported by pytriton_lite"):
        func(*args)
