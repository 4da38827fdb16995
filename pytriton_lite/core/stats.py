"""Per-model counters and durations: the source of /v2/models/stats, ModelStatistics and /metrics.

Updated only on the serving loop (no locks). Durations are nanoseconds from ``time.monotonic_ns``;
``last_inference`` is wall-clock milliseconds, as Triton reports it.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from pytriton_lite.core.summaries import LatencySummaries
from pytriton_lite.types import BatchStatsSnapshot, DurationStat, StatsSnapshot

FAILURE_REASONS = ("REJECTED", "CANCELED", "BACKEND", "OTHER")
# Upper bounds (µs) of the request-latency histogram: six steps a decade from 50 µs to 50 s, then +Inf. Fixed
# buckets cost one bisect per request; the status page turns deltas of them into p50/p99 (within ~25 %).
LATENCY_BOUNDS_US: Tuple[int, ...] = tuple(
    step * 10**exp for exp in range(0, 7) for step in (10, 15, 20, 30, 50, 70) if 50 <= step * 10**exp <= 50_000_000
)


@dataclass
class Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += max(0, int(ns))

    def snapshot(self) -> DurationStat:
        return DurationStat(self.count, self.ns)


@dataclass
class BatchStats:
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)


@dataclass
class ModelStats:
    """Triton's statistics for one model version."""

    last_inference: int = 0
    inference_count: int = 0
    execution_count: int = 0
    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    queue: Duration = field(default_factory=Duration)
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)
    cache_hit: Duration = field(default_factory=Duration)
    cache_miss: Duration = field(default_factory=Duration)
    batch_stats: Dict[int, BatchStats] = field(default_factory=dict)
    failures: Dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAILURE_REASONS, 0))
    pending: int = 0
    batch_size_histogram: Dict[int, int] = field(default_factory=dict)
    # successful requests per LATENCY_BOUNDS_US bucket (the last one: above every bound)
    latency_buckets: List[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_US) + 1))
    instance_busy_ns: Dict[int, int] = field(default_factory=dict)  # instance index -> time spent executing
    summaries: Optional[LatencySummaries] = None  # Triton's summary_latencies, when metrics_config asks

    def record_busy(self, instance: int, ns: int) -> None:
        self.instance_busy_ns[instance] = self.instance_busy_ns.get(instance, 0) + max(0, int(ns))

    def record_execution(self, batch_size: int, requests: int, input_ns: int, infer_ns: int, output_ns: int) -> None:
        """One model execution of ``batch_size`` rows made of ``requests`` requests."""
        self.execution_count += 1
        self.inference_count += batch_size
        self.compute_input.add(input_ns * requests, requests)
        self.compute_infer.add(infer_ns * requests, requests)
        self.compute_output.add(output_ns * requests, requests)
        per = self.batch_stats.get(batch_size)
        if per is None:
            per = self.batch_stats[batch_size] = BatchStats()
        per.compute_input.add(input_ns)
        per.compute_infer.add(infer_ns)
        per.compute_output.add(output_ns)
        self.batch_size_histogram[batch_size] = self.batch_size_histogram.get(batch_size, 0) + 1
        if self.summaries is not None:  # each request of the batch saw the batch's compute phases
            self.summaries.observe("compute_input", input_ns, requests)
            self.summaries.observe("compute_infer", infer_ns, requests)
            self.summaries.observe("compute_output", output_ns, requests)
        self.last_inference = int(time.time() * 1000)

    def record_success(self, total_ns: int, queue_ns: int) -> None:
        success, queue = self.success, self.queue  # Duration.add inlined: once per request
        success.count += 1
        success.ns += total_ns if total_ns > 0 else 0
        queue.count += 1
        queue.ns += queue_ns if queue_ns > 0 else 0
        self.latency_buckets[bisect.bisect_left(LATENCY_BOUNDS_US, total_ns // 1000)] += 1
        if self.summaries is not None:
            self.summaries.observe("request", total_ns)
            self.summaries.observe("queue", queue_ns)

    def record_cache_hit(self, lookup_ns: int) -> None:
        """A request answered from the response cache: a success without an execution."""
        self.cache_hit.add(lookup_ns)
        self.success.add(lookup_ns)
        self.queue.add(0)
        self.last_inference = int(time.time() * 1000)

    def record_failure(self, total_ns: int, reason: str) -> None:
        self.fail.add(total_ns)
        self.failures[reason if reason in self.failures else "OTHER"] += 1

    def snapshot(
        self, name: str, version: int, max_batch_size: int, response_cache: bool, queued: int
    ) -> StatsSnapshot:
        """A frozen copy (taken on the serving loop, where the counters change)."""
        return StatsSnapshot(
            name=name,
            version=version,
            max_batch_size=max_batch_size,
            response_cache=response_cache,
            last_inference=self.last_inference,
            inference_count=self.inference_count,
            execution_count=self.execution_count,
            success=self.success.snapshot(),
            fail=self.fail.snapshot(),
            queue=self.queue.snapshot(),
            compute_input=self.compute_input.snapshot(),
            compute_infer=self.compute_infer.snapshot(),
            compute_output=self.compute_output.snapshot(),
            cache_hit=self.cache_hit.snapshot(),
            cache_miss=self.cache_miss.snapshot(),
            batch_stats=tuple(
                BatchStatsSnapshot(
                    batch_size=size,
                    compute_input=per.compute_input.snapshot(),
                    compute_infer=per.compute_infer.snapshot(),
                    compute_output=per.compute_output.snapshot(),
                )
                for size, per in sorted(self.batch_stats.items())
            ),
            failures=tuple((reason, self.failures.get(reason, 0)) for reason in FAILURE_REASONS),
            pending=self.pending,
            queued=queued,
            batch_size_histogram=tuple(sorted(self.batch_size_histogram.items())),
            latency_histogram=tuple(self.latency_buckets),
            instance_busy_ns=tuple(sorted(self.instance_busy_ns.items())),
            summaries=() if self.summaries is None else self.summaries.snapshot(),
        )
