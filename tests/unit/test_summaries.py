"""Triton's optional latency summaries and the metrics_config parser (core/summaries.py)."""

from __future__ import annotations

import math

import pytest

from pytriton_lite.core.stats import ModelStats
from pytriton_lite.core.summaries import (
    DEFAULT_QUANTILES,
    LatencySummaries,
    Window,
    parse_metrics_config,
)
from pytriton_lite.exceptions import PyTritonValidationError


def test_defaults_are_tritons():
    options = parse_metrics_config(None)
    assert not options.summary_latencies and options.counter_latencies
    assert options.summary_quantiles == DEFAULT_QUANTILES


def test_parse_every_key():
    options = parse_metrics_config(
        [
            "summary_latencies=true",
            "summary_quantiles=0.5:0.05,0.99:0.001",
            "counter_latencies=false",
            "histogram_latencies=false",
        ]
    )
    assert options.summary_latencies and not options.counter_latencies
    assert options.summary_quantiles == ((0.5, 0.05), (0.99, 0.001))


@pytest.mark.parametrize(
    "entry,words",
    [
        ("summary_latency=true", "summary_latency=true"),
        ("summary_latencies", "expected key=value"),
        ("summary_latencies=maybe", "expected true or false"),
        ("summary_quantiles=half", "quantile:error pairs"),
        ("summary_quantiles=1.5:0.1", "not within [0, 1]"),
    ],
)
def test_bad_entries_name_the_problem(entry, words):
    with pytest.raises(PyTritonValidationError, match=None) as info:
        parse_metrics_config([entry])
    assert words in str(info.value)


def test_window_quantiles_by_nearest_rank_and_age():
    window = Window(max_age_s=10.0, max_samples=1000)
    for value in range(1, 101):
        window.observe(float(value), now=0.0)
    assert window.quantiles([0.5, 0.9, 0.99, 1.0], now=5.0) == [(0.5, 50.0), (0.9, 90.0), (0.99, 99.0), (1.0, 100.0)]
    assert window.count == 100 and window.total == 5050.0
    window.observe(7.0, now=11.0)  # the first hundred are older than 10 s at t=11
    assert window.quantiles([0.5], now=11.0) == [(0.5, 7.0)]
    assert window.count == 101  # count and sum are lifetime figures
    ((q, value),) = Window().quantiles([0.5], now=0.0)
    assert q == 0.5 and math.isnan(value)


def test_window_memory_is_bounded():
    window = Window(max_samples=100)
    window.observe(1.0, now=0.0, times=10_000)
    assert len(window.samples) == 100 and window.count == 10_000


def test_model_stats_record_each_phase_when_enabled():
    stats = ModelStats()
    stats.summaries = LatencySummaries(((0.5, 0.05),))
    stats.record_execution(batch_size=4, requests=2, input_ns=1000, infer_ns=8000, output_ns=3000)
    stats.record_success(total_ns=20_000, queue_ns=5_000)
    stats.record_success(total_ns=40_000, queue_ns=7_000)
    phases = {
        phase: (count, total, quantiles)
        for phase, count, total, quantiles in stats.snapshot("m", 1, 8, False, 0).summaries
    }
    assert phases["request"] == (2, 60.0, ((0.5, 20.0),))
    assert phases["queue"] == (2, 12.0, ((0.5, 5.0),))
    assert phases["compute_infer"] == (2, 16.0, ((0.5, 8.0),))
    assert ModelStats().snapshot("m", 1, 8, False, 0).summaries == ()  # off by default
