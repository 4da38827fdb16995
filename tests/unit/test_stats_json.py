"""protocol.stats_json: Triton's statistics JSON / proto shapes, rendered from the data plane's snapshots."""

from __future__ import annotations

from google.protobuf import json_format
from tritonclient.grpc import service_pb2

from pytriton_lite.core.stats import ModelStats
from pytriton_lite.protocol import stats_json
from pytriton_lite.types import StatsSnapshot


def _snap(stats: ModelStats, name: str = "m", version: int = 1) -> StatsSnapshot:
    return stats.snapshot(name, version, max_batch_size=8, response_cache=False, queued=0)


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
    body = stats_json.statistics_json([_snap(_recorded())])
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
    entry = stats_json.statistics_json([_snap(ModelStats(), "fresh", 3)])["model_stats"][0]
    assert entry["version"] == "3" and entry["inference_count"] == 0 and entry["execution_count"] == 0
    for key in ("success", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss"):
        assert entry["inference_stats"][key] == {"count": 0, "ns": 0}
    assert entry["batch_stats"] == []
    assert stats_json.statistics_json([]) == {"model_stats": []}


def test_statistics_proto_carries_the_same_numbers():
    pairs = [_snap(_recorded(), "a", 1), _snap(ModelStats(), "b", 2)]
    proto = stats_json.statistics_proto(pairs)
    assert isinstance(proto, service_pb2.ModelStatisticsResponse)
    expected = json_format.ParseDict(stats_json.statistics_json(pairs), service_pb2.ModelStatisticsResponse())
    assert proto == expected
    assert [s.name for s in proto.model_stats] == ["a", "b"]
    assert proto.model_stats[0].inference_stats.success.count == 3
    assert [b.batch_size for b in proto.model_stats[0].batch_stats] == [1, 4]
    assert proto.model_stats[1].version == "2"
