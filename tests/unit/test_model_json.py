"""Server/model metadata and the model config document (proto and Triton's JSON form)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2

from pytriton_lite.core.model import Model
from pytriton_lite.core.served_config import bound_model_config
from pytriton_lite.core.stats import ModelStats
from pytriton_lite.model_config import (
    DynamicBatcher,
    ModelConfig,
    ModelWarmup,
    QueuePolicy,
    Tensor,
    TimeoutAction,
    TritonModelConfig,
    WarmupInput,
)
from pytriton_lite.protocol import model_json, stats_json
from pytriton_lite.types import ModelState

_INPUTS = [Tensor(name="A", shape=(-1, 3), dtype=np.float32), Tensor(name="S", shape=(1,), dtype=bytes, optional=True)]
_OUTPUTS = [Tensor(name="O", shape=(2,), dtype=np.int64)]


def _model(config=None, decoupled=False, instances=2, state=ModelState.READY, reason=""):
    config = config or ModelConfig(max_batch_size=8)
    if decoupled:
        config = dataclasses.replace(config, decoupled=True)
    model = Model(
        "m",
        3,
        [lambda requests: requests] * instances,
        _INPUTS,
        _OUTPUTS,
        config,
    )
    return model.info(state, reason)


def test_server_metadata():
    data = model_json.server_metadata("my-id")
    assert data["name"] == "my-id" and data["version"] == model_json.SERVER_VERSION
    assert data["extensions"] == list(model_json.SERVER_EXTENSIONS)
    assert "statistics" in data["extensions"] and "binary_tensor_data" in data["extensions"]


def test_model_metadata_batch_dim_and_versions():
    data = model_json.model_metadata(_model())
    assert list(data) == ["name", "versions", "platform", "inputs", "outputs"]  # Triton's key order
    assert data["versions"] == ["3"] and data["platform"] == "python"
    assert data["inputs"] == [
        {"name": "A", "datatype": "FP32", "shape": [-1, -1, 3]},
        {"name": "S", "datatype": "BYTES", "shape": [-1, 1]},
    ]
    unbatched = model_json.model_metadata(_model(ModelConfig(batching=False)), versions=[1, 3])
    assert unbatched["versions"] == ["1", "3"]
    assert unbatched["outputs"] == [{"name": "O", "datatype": "INT64", "shape": [2]}]


def test_config_json_has_numbers_and_triton_sections():
    batcher = DynamicBatcher(
        max_queue_delay_microseconds=100,
        preferred_batch_size=[2, 4],
        priority_levels=2,
        default_priority_level=1,
        default_queue_policy=QueuePolicy(TimeoutAction.DELAY, 5000, True, 16),
        priority_queue_policy={2: QueuePolicy(max_queue_size=3)},
    )
    config = ModelConfig(max_batch_size=8, batcher=batcher, response_cache=True)
    data = model_json.model_config_dict(_model(config))
    json.dumps(data)  # plain JSON
    assert data["name"] == "m" and data["backend"] == "python" and data["platform"] == ""
    assert data["max_batch_size"] == 8
    assert data["input"][0] == {
        "name": "A",
        "data_type": "TYPE_FP32",
        "dims": [-1, 3],
        "format": "FORMAT_NONE",
        "is_shape_tensor": False,
        "allow_ragged_batch": False,
        "optional": False,
        "is_non_linear_format_io": False,
    }
    assert data["input"][1]["data_type"] == "TYPE_STRING" and data["input"][1]["optional"] is True
    section = data["dynamic_batching"]
    assert section["preferred_batch_size"] == [2, 4]
    assert section["max_queue_delay_microseconds"] == 100 and section["priority_levels"] == 2
    assert section["default_queue_policy"] == {
        "timeout_action": "DELAY",
        "default_timeout_microseconds": 5000,
        "allow_timeout_override": True,
        "max_queue_size": 16,
    }
    assert section["priority_queue_policy"]["2"]["max_queue_size"] == 3
    assert data["instance_group"][0]["kind"] == "KIND_CPU" and data["instance_group"][0]["count"] == 2
    assert data["model_transaction_policy"] == {"decoupled": False}
    assert data["response_cache"] == {"enable": True}


def test_config_without_batching_or_cache():
    data = model_json.model_config_dict(_model(ModelConfig(batching=False), decoupled=True))
    assert data["max_batch_size"] == 0
    assert "dynamic_batching" not in data and "response_cache" not in data
    assert data["model_transaction_policy"] == {"decoupled": True}


def test_preferred_batch_size_defaults_to_max_like_triton():
    data = model_json.model_config_dict(_model(ModelConfig(max_batch_size=16)))
    assert data["dynamic_batching"]["preferred_batch_size"] == [16]


def test_config_round_trips_through_pytriton_parser_and_protobuf():
    warmup = [
        ModelWarmup(
            name="w", batch_size=2, inputs={"A": WarmupInput(dtype=np.float32, shape=(3,), random_data=True)}, count=1
        )
    ]
    config = ModelConfig(max_batch_size=4, batcher=DynamicBatcher(max_queue_delay_microseconds=7), model_warmup=warmup)
    data = model_json.model_config_dict(_model(config))
    parsed = TritonModelConfig.from_dict(data)
    assert (parsed.model_name, parsed.max_batch_size, parsed.batching, parsed.decoupled) == ("m", 4, True, False)
    assert parsed.batcher.max_queue_delay_microseconds == 7
    assert [(t.name, t.shape, t.dtype) for t in parsed.inputs] == [("A", (-1, 3), np.float32), ("S", (1,), np.bytes_)]
    proto = json_format.ParseDict(data, model_config_pb2.ModelConfig())
    assert proto == _model(config).config
    assert proto == bound_model_config("m", _INPUTS, _OUTPUTS, config, instance_count=2)
    assert data["model_warmup"][0]["inputs"]["A"] == {"data_type": "TYPE_FP32", "dims": [3], "random_data": True}


def test_repository_index_and_statistics():
    models = [_model(), _model(state=ModelState.UNAVAILABLE, reason="unloaded")]
    assert model_json.repository_index(models) == [
        {"name": "m", "version": "3", "state": "READY"},
        {"name": "m", "version": "3", "state": "UNAVAILABLE", "reason": "unloaded"},
    ]
    stats = ModelStats()
    stats.record_execution(batch_size=2, requests=1, input_ns=1, infer_ns=2, output_ns=3)
    document = stats_json.statistics_json([stats.snapshot("m", 3, 8, False, 0)])
    entry = document["model_stats"][0]
    assert (entry["name"], entry["version"], entry["inference_count"], entry["execution_count"]) == ("m", "3", 2, 1)
    assert entry["batch_stats"][0]["batch_size"] == 2
