"""workers/wire.py: frames as bytes and back (arrays out of band), requests, responses and errors as tuples,
the served ModelConfig protobuf through pickle, and process.share_limits (the connection caps per worker)."""

from __future__ import annotations

import pickle
import struct
import threading
from typing import Any, List, Sequence, Tuple

import numpy as np
import pytest
from tritonclient.grpc.model_config_pb2 import ModelConfig

from pytriton_lite.config import TritonConfig
from pytriton_lite.exceptions import (
    CancelledError,
    DecoupledModelError,
    InferenceError,
    InvalidArgumentError,
    ModelExecutionError,
    ModelNotFoundError,
    PyTritonValidationError,
    QueueTimeoutError,
    UnavailableError,
)
from pytriton_lite.frontends._http_limits import HttpLimits
from pytriton_lite.types import InferenceRequest, InferenceResponse
from pytriton_lite.workers import wire
from pytriton_lite.workers.process import share_limits


def frame_bytes(message: Tuple[Any, ...]) -> bytes:
    return b"".join(bytes(part) for part in wire.encode(message))


def parse_frame(data: bytes) -> Tuple[Any, ...]:
    """Read one frame as a receiver does: the prefix, the lengths, the meta, then each buffer."""
    meta_length, count = wire.parse_prefix(data[: wire.PREFIX.size])
    at = wire.PREFIX.size
    lengths = wire.parse_lengths(data[at : at + wire.LENGTH.size * count], count)
    at += wire.LENGTH.size * count
    meta = data[at : at + meta_length]
    at += meta_length
    buffers: List[Any] = []
    for length in lengths:
        buffers.append(bytearray(data[at : at + length]))
        at += length
    assert at == len(data), "the frame has bytes its prefix does not announce"
    return wire.decode(meta, buffers)


def assert_same_array(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype == object:
        assert got.tolist() == want.tolist()
    else:
        np.testing.assert_array_equal(got, want)


ARRAYS = {
    "fp32": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    "int64": np.array([[-(2**62), 0, 2**62 + 5]], dtype=np.int64),
    "bytes": np.array([[b"a", b""], [b"\x00\xff" * 10, "é".encode()]], dtype=object),
    "empty": np.zeros((0, 4), dtype=np.float32),
    "empty_int": np.zeros((2, 0), dtype=np.int64),
    "transposed": np.arange(20, dtype=np.float64).reshape(4, 5).T,  # F-contiguous
    "strided": np.arange(40, dtype=np.int32).reshape(8, 5)[::2, 1::2],  # neither C nor F contiguous
    "fp16": np.linspace(-1, 1, 9, dtype=np.float16),
    "bool": np.array([True, False, True]),
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_an_array_round_trips_through_a_frame(name):
    array = ARRAYS[name]
    kind, call_id, got = parse_frame(frame_bytes((wire.OK, 7, array)))
    assert (kind, call_id) == (wire.OK, 7)
    assert_same_array(got, array)


def test_numeric_contiguous_arrays_travel_out_of_band_and_stay_writable():
    array = np.arange(1000, dtype=np.float32)
    parts = wire.encode((wire.OK, 1, {"a": array, "b": array.reshape(10, 100).T}))
    _, count = wire.parse_prefix(bytes(parts[0][: wire.PREFIX.size]))
    assert count == 2 and len(parts) == 2 + count  # head, meta, one buffer per array
    assert all(memoryview(p).nbytes == array.nbytes for p in parts[2:])
    # the meta holds no tensor bytes: a 4000-byte array adds nothing like 4000 bytes to it
    assert memoryview(parts[1]).nbytes < 1000
    _, _, got = parse_frame(frame_bytes((wire.OK, 1, {"a": array})))
    got["a"][0] = 5.0  # a model may write into its inputs
    assert got["a"][0] == 5.0 and array[0] == 0.0


def test_a_frame_without_arrays_has_no_buffers():
    parts = wire.encode((wire.CALL, 3, "statistics", ("m", "")))
    assert len(parts) == 2
    assert wire.parse_prefix(bytes(parts[0])) == (memoryview(parts[1]).nbytes, 0)
    assert parse_frame(frame_bytes((wire.CALL, 3, "statistics", ("m", "")))) == (wire.CALL, 3, "statistics", ("m", ""))


def test_a_prefix_announcing_too_many_buffers_is_a_frame_error():
    assert wire.parse_prefix(wire.PREFIX.pack(5, wire.MAX_BUFFERS)) == (5, wire.MAX_BUFFERS)
    with pytest.raises(wire.FrameError, match=str(wire.MAX_BUFFERS + 1)):
        wire.parse_prefix(wire.PREFIX.pack(5, wire.MAX_BUFFERS + 1))
    assert issubclass(wire.FrameError, ValueError)


def test_request_packs_to_a_tuple_and_back():
    request = InferenceRequest(
        model_name="m",
        model_version="2",
        inputs={name: ARRAYS[name] for name in ("fp32", "int64", "bytes", "empty", "strided")},
        parameters={"p": 1, "s": "x", "b": True, "f": 0.5},
        requested_outputs=["y"],
        id="req-1",
        priority=2,
        timeout_us=1500,
        correlation_id="seq-9",
        flags=3,
    )
    packed = wire.pack_request(request)
    assert type(packed) is tuple
    kind, call_id, again = parse_frame(frame_bytes((wire.INFER, 11, packed)))
    got = wire.unpack_request(again)
    assert (kind, call_id) == (wire.INFER, 11)
    for field in ("model_name", "model_version", "parameters", "requested_outputs", "id", "priority", "timeout_us"):
        assert getattr(got, field) == getattr(request, field), field
    assert (got.correlation_id, got.flags) == ("seq-9", 3)
    assert list(got.inputs) == list(request.inputs)  # the order of the inputs is kept
    for name, array in request.inputs.items():
        assert_same_array(got.inputs[name], array)
    # the defaults too
    plain = wire.unpack_request(wire.pack_request(InferenceRequest("m")))
    assert plain == InferenceRequest("m")


def test_response_packs_to_a_tuple_and_back():
    response = InferenceResponse(
        "m", "1", {"y": ARRAYS["fp32"], "t": ARRAYS["bytes"]}, id="r", parameters={"k": "v"}, final=False
    )
    got = wire.unpack_response(parse_frame(frame_bytes((wire.ITEM, 4, wire.pack_response(response))))[2])
    assert (got.model_name, got.model_version, got.id, got.parameters, got.final) == ("m", "1", "r", {"k": "v"}, False)
    assert list(got.outputs) == ["y", "t"]
    for name, array in response.outputs.items():
        assert_same_array(got.outputs[name], array)


def through_the_wire(exc: BaseException) -> BaseException:
    """``exc`` as a worker gets it: packed, framed, parsed and unpacked."""
    return wire.unpack_error(parse_frame(frame_bytes((wire.ERR, 1, wire.pack_error(exc))))[2])


@pytest.mark.parametrize(
    "exc",
    [
        InvalidArgumentError("unexpected shape for input 'x'"),
        ModelNotFoundError("Request for unknown model: 'nope' is not found"),
        QueueTimeoutError("Request timeout expired"),
        UnavailableError("Exceeds maximum queue size"),
        CancelledError("the client left"),
        PyTritonValidationError("bad config"),
        InferenceError("teapot", http_status=418, headers=[("Retry-After", "3"), ("X-A", "b")]),
        DecoupledModelError("streamer"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_error_keeps_its_class_message_status_and_headers(exc):
    got = through_the_wire(exc)
    assert type(got) is type(exc)
    assert str(got) == str(exc) and got.args == exc.args
    assert got.http_status == exc.http_status and got.grpc_code == exc.grpc_code
    assert getattr(got, "headers", None) == getattr(exc, "headers", None)
    assert getattr(got, "message", None) == getattr(exc, "message", None)


def test_decoupled_error_keeps_its_model_though_its_init_takes_another_argument():
    got = through_the_wire(DecoupledModelError("streamer"))
    assert isinstance(got, DecoupledModelError) and got.model == "streamer"
    assert "model 'streamer' is decoupled" in str(got)


def test_an_instance_status_override_is_kept():
    exc = ModelNotFoundError("gone")
    exc.http_status = 410
    got = through_the_wire(exc)
    assert got.http_status == 410 and type(got).http_status == 404


def test_model_execution_error_keeps_the_model_message():
    exc = ModelExecutionError("ValueError: bad row")
    exc.model_message = "bad row"
    got = through_the_wire(exc)
    assert isinstance(got, ModelExecutionError) and got.model_message == "bad row"


def test_builtin_errors_keep_their_class():
    for exc in (ValueError("v"), KeyError("k"), TimeoutError("t"), OSError(2, "no such file")):
        got = through_the_wire(exc)
        assert type(got) is type(exc) and got.args == exc.args


class OwnError(Exception):
    """A model's own error whose ``__init__`` takes no message: unpack does not call it."""

    def __init__(self, code: int) -> None:
        super().__init__(f"code {code}")
        self.code = code
        self.lock = threading.Lock()  # an attribute of the model's own making that does not pickle


def test_an_attribute_that_does_not_pickle_is_dropped_and_the_rest_kept():
    exc = OwnError(7)
    packed = wire.pack_error(exc)
    pickle.dumps(packed, protocol=5)  # the whole error frame can be sent
    got = through_the_wire(exc)
    assert type(got) is OwnError and str(got) == "code 7" and got.code == 7
    assert not hasattr(got, "lock")


class TupleOfLocksError(Exception):
    def __init__(self) -> None:
        super().__init__("boom")
        self.where = ("ok", 1)
        self.held = (threading.Lock(),)  # a tuple, but not of plain values


def test_a_tuple_attribute_that_does_not_pickle_is_dropped_too():
    packed = wire.pack_error(TupleOfLocksError())
    pickle.dumps(packed, protocol=5)
    got = wire.unpack_error(packed)
    assert got.where == ("ok", 1) and not hasattr(got, "held")


class UnpicklableArgs(Exception):
    pass


def test_an_unimportable_subclass_becomes_its_nearest_importable_base_with_its_status():
    # ``class TeapotError(InferenceError)`` of a model's own, where the worker cannot import it (a user's script)
    teapot = type(
        "TeapotError",
        (InferenceError,),
        {"http_status": 418, "grpc_code": "RESOURCE_EXHAUSTED", "__module__": "user_script_not_importable"},
    )
    got = through_the_wire(teapot("short and stout", headers=[("Retry-After", "7")]))
    assert isinstance(got, InferenceError) and str(got) == "short and stout"
    assert (got.http_status, got.grpc_code, got.headers) == (418, "RESOURCE_EXHAUSTED", (("Retry-After", "7"),))


def test_args_that_do_not_pickle_become_the_message():
    exc = UnpicklableArgs("text", threading.Lock())
    got = through_the_wire(exc)
    assert type(got) is UnpicklableArgs and got.args == (str(exc),)


def test_an_unknown_class_becomes_a_runtime_error_with_its_name_and_message():
    got = wire.unpack_error(("no_such_module_here", "Gone", ("it failed",), None))
    assert type(got) is RuntimeError and str(got) == "Gone: it failed"
    got = wire.unpack_error(("pytriton_lite.exceptions", "NoSuchError", (), {"x": 1}))
    assert type(got) is RuntimeError and str(got) == "NoSuchError: "
    # a name that is not an exception class is not made one
    got = wire.unpack_error(("pytriton_lite.workers.wire", "encode", ("x",), None))
    assert type(got) is RuntimeError and str(got) == "encode: x"


def test_a_class_defined_in_a_function_cannot_be_imported_and_becomes_a_runtime_error():
    class Local(Exception):
        pass

    got = through_the_wire(Local("inside"))
    assert type(got) is RuntimeError and "Local" in str(got) and "inside" in str(got)


def test_a_nested_class_is_found_by_its_qualified_name():
    got = through_the_wire(Holder.Inner("deep"))
    assert type(got) is Holder.Inner and got.args == ("deep",)


class Holder:
    class Inner(Exception):
        pass


def test_model_config_protobuf_pickles_as_its_bytes():
    config = ModelConfig(name="m", max_batch_size=8, backend="python")
    config.input.add(name="x", data_type=11, dims=[-1, 3])
    config.dynamic_batching.max_queue_delay_microseconds = 100
    config.parameters["k"].string_value = "v"
    got = parse_frame(frame_bytes((wire.OK, 1, {"config": config})))[2]["config"]
    assert isinstance(got, ModelConfig) and got == config
    assert got.SerializeToString() == config.SerializeToString()
    assert pickle.loads(pickle.dumps(ModelConfig())) == ModelConfig()


def test_message_kinds_are_distinct():
    kinds = [getattr(wire, name) for name in dir(wire) if name.isupper() and isinstance(getattr(wire, name), int)]
    kinds = [k for k in kinds if k not in (wire.MAX_BUFFERS, wire.IN_BAND_BYTES)]
    assert len(set(kinds)) == len(kinds) == 15


def test_lengths_are_read_in_order():
    raw = b"".join(struct.pack("<Q", n) for n in (0, 5, 2**40))
    assert wire.parse_lengths(raw, 3) == [0, 5, 2**40]
    assert wire.parse_lengths(b"", 0) == []


# --- connection caps: each worker counts only its own connections ------------------------------------------


def per_worker_caps(config: TritonConfig, workers: int) -> Tuple[Any, Any]:
    """(HTTP, gRPC) connection caps of one worker, built as the worker builds its front ends."""
    shared = share_limits(config, workers)
    http = HttpLimits.from_triton_config(shared, workers)
    return (http.max_connections if config.http_max_connections is not None else None), shared.grpc_max_connections


@pytest.mark.parametrize(
    "http, grpc, workers, want",
    [
        (4, 4, 2, (2, 2)),
        (5, 3, 2, (3, 2)),  # rounded up: never below the cap the user gave
        (1, 1, 4, (1, 1)),
        (10, None, 3, (4, None)),
        (None, 7, 2, (None, 4)),
        (None, None, 2, (None, None)),
        (4, 6, 1, (4, 6)),  # one worker: as given
    ],
)
def test_connection_caps_are_split_between_workers(http, grpc, workers, want):
    config = TritonConfig(http_max_connections=http, grpc_max_connections=grpc, http_port=0)
    assert per_worker_caps(config, workers) == want
    assert (config.http_max_connections, config.grpc_max_connections) == (http, grpc)  # the config is left as it is


def test_a_split_http_cap_keeps_the_server_wide_figure_for_its_refusal():
    limits = HttpLimits.from_triton_config(TritonConfig(http_max_connections=4), 2)
    assert (limits.max_connections, limits.announced_connections) == (2, 4)
    assert HttpLimits.from_triton_config(TritonConfig(http_max_connections=4), 1).announced_connections is None


def test_share_limits_keeps_a_config_without_caps_as_it_is():
    config = TritonConfig(frontend_workers=2)
    assert share_limits(config, 2) is config


def _sizes(parts: Sequence[Any]) -> List[int]:
    return [memoryview(p).nbytes for p in parts]


def test_the_prefix_announces_every_length():
    arrays = {"a": np.ones(3, np.float32), "b": np.ones(0, np.int8), "c": np.ones((2, 2), np.int64)}
    parts = wire.encode((wire.OK, 2, arrays))
    meta_length, count = wire.parse_prefix(bytes(parts[0][: wire.PREFIX.size]))
    lengths = wire.parse_lengths(bytes(parts[0][wire.PREFIX.size :]), count)
    assert [meta_length, *lengths] == _sizes(parts[1:])


def test_several_messages_share_one_batch_frame_with_their_arrays():
    messages = [(wire.OK, i, {"v": np.full(4, i, np.float32), "s": "x" * i}) for i in range(50)]
    parts = wire.encode_many(messages)
    meta_length, count = wire.parse_prefix(bytes(parts[0])[: wire.PREFIX.size])
    assert count == 50 and len(parts) == 2 + 50  # one header, one pickle, each array's bytes out of band
    kind, got = parse_frame(b"".join(bytes(part) for part in parts))
    assert kind == wire.BATCH and [m[1] for m in got] == list(range(50))
    assert all(m[2]["v"].tolist() == [float(i)] * 4 and m[2]["s"] == "x" * i for i, m in enumerate(got))


def test_one_message_is_not_wrapped_in_a_batch():
    message = (wire.OK, 7, np.arange(3))
    assert [bytes(p) for p in wire.encode_many([message])] == [bytes(p) for p in wire.encode(message)]


def test_a_batch_over_the_buffer_limit_falls_back_to_a_frame_per_message(monkeypatch):
    monkeypatch.setattr(wire, "MAX_BUFFERS", 5)
    messages = [(wire.OK, i, [np.arange(2), np.arange(3)]) for i in range(4)]  # 8 buffers together
    data = b"".join(bytes(part) for part in wire.encode_many(messages))
    frames = []
    while data:
        meta_length, count = wire.parse_prefix(data[: wire.PREFIX.size])
        head = wire.PREFIX.size + wire.LENGTH.size * count
        size = head + meta_length + sum(wire.parse_lengths(data[wire.PREFIX.size : head], count))
        frames.append(parse_frame(data[:size]))
        data = data[size:]
    assert [f[1] for f in frames] == [0, 1, 2, 3] and all(f[0] == wire.OK for f in frames)
    assert frames[3][2][1].tolist() == [0, 1, 2]


def test_small_tensors_travel_in_the_pickle_and_large_ones_out_of_band_both_writable():
    small = np.arange(16, dtype=np.float32).reshape(1, 16)  # 64 bytes
    large = np.arange(wire.IN_BAND_BYTES, dtype=np.float32)  # 4x the in-band limit
    request = InferenceRequest("m", "", {"small": small, "large": large, "strided": large[::4]})
    parts = wire.encode((wire.INFER, 1, wire.pack_request(request)))
    _, count = wire.parse_prefix(bytes(parts[0][: wire.PREFIX.size]))
    assert count == 1 and memoryview(parts[2]).nbytes == large.nbytes  # only the large one has its own buffer
    _, _, packed = parse_frame(b"".join(bytes(p) for p in parts))
    got = wire.unpack_request(packed).inputs
    for name, want in (("small", small), ("large", large), ("strided", large[::4])):
        assert got[name].dtype == want.dtype and np.array_equal(got[name], want)
        got[name].flat[0] = 5  # a model may write into its inputs
        assert got[name].flat[0] == 5 and want.flat[0] == 0
