"""protocol.stats_json: Triton's statistics JSON / proto shapes and the statistics extension's lookup errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from google.protobuf import json_format
from tritonclient.grpc import service_pb2

from pytriton_lite.core.registry import Registry
from pytriton_lite.core.stats import ModelStats
from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.protocol import stats_json


def _model(name: str = "m", version: int = 1, ready: bool = True) -> SimpleNamespace:
    return SimpleNamespace(name=name, version=version, version_str=str(version), ready=ready)


def _recorded() -> ModelStats:
    """Two executions (batch 4 from 2 requests, then batch 1), one success per request, one failure."""
    stats = ModelStats()
    stats.record_execution(batch_size=4, requests=2, input_ns=10, infer_ns=100, output_ns=20)
    stats.record_success(total_ns=500, queue_ns=30)
    stats.record_success(total_ns=700, queue_ns=50)
    stats.record_execution(batch_size=1, requests=1, input_ns=5, infer_ns=60, output_ns=7)
    stats.record_success(total_ns=300, queue_ns=11)
    stats.record_failure(total_ns=90, reason="BACKEND")
    stats.last_inference = 1_700_000_000_123
    return stats


def test_statistics_json_has_tritons_exact_shape():
    body = stats_json.statistics_json([(_model(), _recorded())])
    assert body == {
        "model_stats": [
            {
                "name": "m",
                "version": "1",
                "last_inference": 1_700_000_000_123,
                "inference_count": 5,
                "execution_count": 2,
                "inference_stats": {
                    "success": {"count": 3, "ns": 1500},
                    "fail": {"count": 1, "ns": 90},
                    "queue": {"count": 3, "ns": 91},
                    "compute_input": {"count": 3, "ns": 25},
                    "compute_infer": {"count": 3, "ns": 260},
                    "compute_output": {"count": 3, "ns": 47},
                    "cache_hit": {"count": 0, "ns": 0},
                    "cache_miss": {"count": 0, "ns": 0},
                },
                "response_stats": {},
                "batch_stats": [  # sorted by batch size, one count per execution
                    {
                        "batch_size": 1,
                        "compute_input": {"count": 1, "ns": 5},
                        "compute_infer": {"count": 1, "ns": 60},
                        "compute_output": {"count": 1, "ns": 7},
                    },
                    {
                        "batch_size": 4,
                        "compute_input": {"count": 1, "ns": 10},
                        "compute_infer": {"count": 1, "ns": 100},
                        "compute_output": {"count": 1, "ns": 20},
                    },
                ],
                "memory_usage": [],
            }
        ]
    }
    # Triton's member order (clients that diff raw JSON see the same text)
    assert list(body["model_stats"][0]) == [
        "name",
        "version",
        "last_inference",
        "inference_count",
        "execution_count",
        "inference_stats",
        "response_stats",
        "batch_stats",
        "memory_usage",
    ]


def test_fresh_model_has_every_member_perf_analyzer_reads():
    entry = stats_json.statistics_json([(_model("fresh", 3), ModelStats())])["model_stats"][0]
    assert entry["version"] == "3" and entry["inference_count"] == 0 and entry["execution_count"] == 0
    for key in ("success", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss"):
        assert entry["inference_stats"][key] == {"count": 0, "ns": 0}
    assert entry["batch_stats"] == []
    assert stats_json.statistics_json([]) == {"model_stats": []}


def test_statistics_proto_carries_the_same_numbers():
    pairs = [(_model("a", 1), _recorded()), (_model("b", 2), ModelStats())]
    proto = stats_json.statistics_proto(pairs)
    assert isinstance(proto, service_pb2.ModelStatisticsResponse)
    expected = json_format.ParseDict(stats_json.statistics_json(pairs), service_pb2.ModelStatisticsResponse())
    assert proto == expected
    assert [s.name for s in proto.model_stats] == ["a", "b"]
    assert proto.model_stats[0].inference_stats.success.count == 3
    assert [b.batch_size for b in proto.model_stats[0].batch_stats] == [1, 4]
    assert proto.model_stats[1].version == "2"


class _FakeDataPlane:
    """The three DataPlane calls ``collect`` uses, over the real Registry (its lookup rules and messages)."""

    def __init__(self, *models: SimpleNamespace) -> None:
        self.registry = Registry()
        self.stats = {}
        for model in models:
            self.registry.add(model)
            self.stats[(model.name, model.version)] = ModelStats(inference_count=model.version)

    def models(self):
        return self.registry.models()

    def get_model(self, name, version=""):
        return self.registry.get(name, version)

    def stats_for(self, model):
        return self.stats[(model.name, model.version)]


def _names(pairs):
    return [(m.name, m.version, s.inference_count) for m, s in pairs]


def test_collect_selects_like_triton():
    plane = _FakeDataPlane(_model("a", 1), _model("a", 2), _model("b", 1), _model("c", 1, ready=False))
    # no name: every ready version of every model
    assert _names(stats_json.collect(plane)) == [("a", 1, 1), ("a", 2, 2), ("b", 1, 1)]
    # a name without a version: all ready versions of it
    assert _names(stats_json.collect(plane, "a")) == [("a", 1, 1), ("a", 2, 2)]
    assert _names(stats_json.collect(plane, "a", "2")) == [("a", 2, 2)]
    assert _names(stats_json.collect(plane, "b", "")) == [("b", 1, 1)]


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("x", "", "requested model 'x' is not available"),
        ("x", "1", "requested model 'x' is not available"),
        ("c", "", "requested model 'c' is not available"),  # not ready = not available
        ("a", "7", "requested model version is not available for model 'a'"),
    ],
)
def test_collect_errors_are_invalid_argument_not_404(name, version, message):
    plane = _FakeDataPlane(_model("a", 1), _model("c", 1, ready=False))
    with pytest.raises(InvalidArgumentError) as info:
        stats_json.collect(plane, name, version)
    assert str(info.value) == message
    assert info.value.http_status == 400 and info.value.grpc_code == "INVALID_ARGUMENT"


def test_collect_bad_version_string_keeps_invalid_argument():
    plane = _FakeDataPlane(_model("a", 1))
    with pytest.raises(InvalidArgumentError, match="failed to get model version from specified version string 'v1'"):
        stats_json.collect(plane, "a", "v1")
