"""frontends.metrics without sockets: the collector over ModelStats and the text exposition (Triton's names)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from pytriton_lite.core.stats import ModelStats
from pytriton_lite.frontends.metrics import MetricsFrontend, batch_size_buckets


class _FakeDataPlane:
    """What the metrics collector reads: the data plane's statistics snapshots."""

    def __init__(self, *entries):
        self._entries = list(entries)  # (model, stats, queued)

    def all_statistics(self):
        return [
            stats.snapshot(m.name, m.version, m.max_batch_size, m.response_cache, queued)
            for m, stats, queued in self._entries
        ]


def _model(name="m", version=1, max_batch_size=8, response_cache=False):
    return SimpleNamespace(name=name, version=version, max_batch_size=max_batch_size, response_cache=response_cache)


def _series(text):
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            values[key] = float(value)
    return values


def test_exposition_uses_tritons_names_and_labels():
    stats = ModelStats()
    stats.record_execution(batch_size=2, requests=2, input_ns=1000, infer_ns=5000, output_ns=2000)
    stats.record_success(total_ns=9000, queue_ns=1500)
    stats.record_success(total_ns=9500, queue_ns=1500)
    stats.record_execution(batch_size=5, requests=1, input_ns=1000, infer_ns=5000, output_ns=2000)
    stats.record_success(total_ns=9000, queue_ns=1000)
    stats.record_failure(total_ns=10, reason="BACKEND")
    stats.record_failure(total_ns=10, reason="REJECTED")
    stats.record_failure(total_ns=10, reason="REJECTED")
    stats.pending = 3
    text = MetricsFrontend(_FakeDataPlane((_model(), stats, 2)), host="127.0.0.1", port=0).render()
    lines = text.splitlines()
    assert 'nv_inference_request_success{model="m",version="1"} 3' in lines
    assert 'nv_inference_count{model="m",version="1"} 7' in lines
    assert 'nv_inference_exec_count{model="m",version="1"} 2' in lines
    assert 'nv_inference_request_duration_us{model="m",version="1"} 27' in lines
    assert 'nv_inference_queue_duration_us{model="m",version="1"} 4' in lines
    assert 'nv_inference_compute_input_duration_us{model="m",version="1"} 3' in lines
    assert 'nv_inference_compute_infer_duration_us{model="m",version="1"} 15' in lines
    assert 'nv_inference_compute_output_duration_us{model="m",version="1"} 6' in lines
    assert 'nv_inference_pending_request_count{model="m",version="1"} 3' in lines
    assert 'nv_inference_request_failure{model="m",reason="BACKEND",version="1"} 1' in lines
    assert 'nv_inference_request_failure{model="m",reason="REJECTED",version="1"} 2' in lines
    assert 'nv_inference_request_failure{model="m",reason="CANCELED",version="1"} 0' in lines
    assert 'nv_inference_request_failure{model="m",reason="OTHER",version="1"} 0' in lines
    assert "# TYPE nv_inference_count counter" in lines
    assert "# TYPE nv_inference_pending_request_count gauge" in lines
    assert "# HELP nv_inference_request_success Number of successful inference requests, all batch sizes" in lines
    # no *_total / *_created renaming of counters (nv_cpu_memory_total_bytes is Triton's own name)
    assert not re.search(r"^\w+_(total|created)[{ ]", text, re.MULTILINE)
    # beyond Triton: executed batch sizes (2 and 5) and the current queue
    series = _series(text)
    buckets = {
        le: series[f'pytriton_lite_batch_size_bucket{{le="{le}",model="m",version="1"}}']
        for le in ("1.0", "2.0", "4.0", "8.0", "+Inf")
    }
    assert buckets == {"1.0": 0, "2.0": 1, "4.0": 1, "8.0": 2, "+Inf": 2}
    assert series['pytriton_lite_batch_size_count{model="m",version="1"}'] == 2
    assert series['pytriton_lite_batch_size_sum{model="m",version="1"}'] == 7
    assert series['pytriton_lite_queue_size{model="m",version="1"}'] == 2
    assert "# TYPE pytriton_lite_batch_size histogram" in lines
    assert "# TYPE pytriton_lite_queue_size gauge" in lines


def test_no_models_no_series_and_cache_families_only_for_cached_models():
    assert "{" not in MetricsFrontend(_FakeDataPlane(), port=0).render()
    plain = _FakeDataPlane((_model("plain"), ModelStats(), 0))
    assert "nv_cache_" not in MetricsFrontend(plain, port=0).render()
    stats = ModelStats()
    stats.cache_hit.add(4000, 2)
    stats.cache_miss.add(9000, 1)
    cached = _FakeDataPlane((_model("c", response_cache=True), stats, 0), (_model("plain"), ModelStats(), 0))
    series = _series(MetricsFrontend(cached, port=0).render())
    assert series['nv_cache_num_hits_per_model{model="c",version="1"}'] == 2
    assert series['nv_cache_num_misses_per_model{model="c",version="1"}'] == 1
    assert series['nv_cache_hit_duration_per_model{model="c",version="1"}'] == 4
    assert series['nv_cache_miss_duration_per_model{model="c",version="1"}'] == 9
    assert not any(key.startswith("nv_cache_") and 'model="plain"' in key for key in series)


def test_label_values_are_escaped():
    text = MetricsFrontend(_FakeDataPlane((_model('we"ird\\name'), ModelStats(), 0)), port=0).render()
    assert 'nv_inference_count{model="we\\"ird\\\\name",version="1"} 0' in text.splitlines()


def test_each_frontend_has_its_own_registry():
    plane = _FakeDataPlane((_model(), ModelStats(), 0))
    one, two = MetricsFrontend(plane, port=0), MetricsFrontend(plane, port=0)
    assert one.registry is not two.registry  # registering Triton's names twice would raise on a shared one


@pytest.mark.parametrize(
    ("max_batch_size", "bounds"),
    [(0, [1]), (1, [1]), (2, [1, 2]), (8, [1, 2, 4, 8]), (12, [1, 2, 4, 8, 12])],
)
def test_batch_size_buckets(max_batch_size, bounds):
    assert batch_size_buckets(max_batch_size) == bounds


def test_from_triton_config_defaults_to_http_address():
    plane = _FakeDataPlane()
    config = SimpleNamespace(http_address="10.1.2.3", metrics_address=None, metrics_port=None)
    frontend = MetricsFrontend.from_triton_config(plane, config)
    assert (frontend.host, frontend.requested_port) == ("10.1.2.3", 8002)
    config = SimpleNamespace(http_address="10.1.2.3", metrics_address="127.0.0.1", metrics_port=0)
    frontend = MetricsFrontend.from_triton_config(plane, config)
    assert (frontend.host, frontend.requested_port) == ("127.0.0.1", 0)
    frontend = MetricsFrontend.from_triton_config(plane, SimpleNamespace())
    assert (frontend.host, frontend.requested_port) == ("0.0.0.0", 8002)
