"""Triton's optional latency summaries (``--metrics-config summary_latencies=true``), and ``metrics_config`` itself.

Each model version keeps, per phase (request, queue, compute input/infer/output), the observations of the last
``SUMMARY_MAX_AGE_S`` seconds (at most ``SUMMARY_MAX_SAMPLES`` of them, so memory is bounded whatever the load),
plus a count and a sum since start. Quantiles are computed when a snapshot is taken (a scrape), by nearest rank
over the window; a summary's quantiles are approximate by definition, as prometheus-cpp's are in Triton.
Off by default, as in Triton: nothing is recorded unless asked.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, List, Optional, Sequence, Tuple

from pytriton_lite.exceptions import PyTritonValidationError

SUMMARY_MAX_AGE_S = 60.0
SUMMARY_MAX_SAMPLES = 10_000
# Triton's default summary_quantiles: quantile:allowed error
DEFAULT_QUANTILES: Tuple[Tuple[float, float], ...] = ((0.5, 0.05), (0.9, 0.01), (0.95, 0.001), (0.99, 0.001))
SUMMARY_PHASES = ("request", "queue", "compute_input", "compute_infer", "compute_output")
_KNOWN_KEYS = ("summary_latencies", "summary_quantiles", "counter_latencies", "histogram_latencies")


@dataclass(frozen=True)
class MetricsOptions:
    """What ``metrics_config`` asks for (tritonserver's ``--metrics-config key=value`` entries)."""

    summary_latencies: bool = False
    summary_quantiles: Tuple[Tuple[float, float], ...] = DEFAULT_QUANTILES
    counter_latencies: bool = True


def _bool(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise PyTritonValidationError(f"metrics_config {key}={value!r}: expected true or false")


def _quantiles(value: str) -> Tuple[Tuple[float, float], ...]:
    out = []
    for part in value.split(","):
        quantile, _, error = part.strip().partition(":")
        try:
            q, e = float(quantile), float(error or 0.0)
        except ValueError:
            raise PyTritonValidationError(
                f"metrics_config summary_quantiles={value!r}: expected quantile:error pairs such as 0.5:0.05,0.9:0.01"
            ) from None
        if not 0.0 <= q <= 1.0:
            raise PyTritonValidationError(f"metrics_config summary_quantiles: quantile {q} is not within [0, 1]")
        out.append((q, e))
    return tuple(out)


def parse_metrics_config(entries: Optional[Sequence[str]]) -> MetricsOptions:
    """``["summary_latencies=true", "summary_quantiles=0.5:0.05,0.99:0.001"]`` -> MetricsOptions.

    ``histogram_latencies`` is accepted (Triton's first-response histogram of decoupled models, not kept here) and
    an unknown key is an error that names it."""
    values: Dict[str, str] = {}
    for entry in entries or ():
        key, sep, value = str(entry).partition("=")
        key = key.strip()
        if not sep or key not in _KNOWN_KEYS:
            known = ", ".join(_KNOWN_KEYS)
            raise PyTritonValidationError(f"metrics_config entry {entry!r}: expected key=value with a key of {known}")
        values[key] = value.strip()
    summary = _bool("summary_latencies", values["summary_latencies"]) if "summary_latencies" in values else False
    counters = _bool("counter_latencies", values["counter_latencies"]) if "counter_latencies" in values else True
    quantiles = _quantiles(values["summary_quantiles"]) if "summary_quantiles" in values else DEFAULT_QUANTILES
    return MetricsOptions(summary_latencies=summary, summary_quantiles=quantiles, counter_latencies=counters)


class Window:
    """Observations (µs) of the last ``max_age_s`` seconds, at most ``max_samples``, with a lifetime count and sum."""

    __slots__ = ("count", "max_age_s", "samples", "total")

    def __init__(self, max_age_s: float = SUMMARY_MAX_AGE_S, max_samples: int = SUMMARY_MAX_SAMPLES) -> None:
        self.samples: Deque[Tuple[float, float]] = deque(maxlen=max_samples)
        self.max_age_s = max_age_s
        self.count = 0
        self.total = 0.0

    def observe(self, value_us: float, now: float, times: int = 1) -> None:
        self.count += times
        self.total += value_us * times
        for _ in range(min(times, self.samples.maxlen or times)):
            self.samples.append((now, value_us))

    def quantiles(self, quantiles: Sequence[float], now: float) -> List[Tuple[float, float]]:
        """(quantile, value) by nearest rank over the window; NaN for an empty window (as Prometheus writes it)."""
        horizon = now - self.max_age_s
        samples = self.samples
        while samples and samples[0][0] < horizon:
            samples.popleft()
        values = sorted(value for _, value in samples)
        if not values:
            return [(q, math.nan) for q in quantiles]
        last = len(values) - 1
        return [(q, values[min(last, max(0, math.ceil(q * len(values)) - 1))]) for q in quantiles]


# (phase, lifetime count, lifetime sum µs, ((quantile, value µs), ...)): one entry of StatsSnapshot.summaries
SummarySnapshot = Tuple[str, int, float, Tuple[Tuple[float, float], ...]]


class LatencySummaries:
    """The five phase windows of one model version; the caller (core.stats) records on the serving loop."""

    def __init__(self, quantiles: Sequence[Tuple[float, float]] = DEFAULT_QUANTILES) -> None:
        self.quantiles = tuple(q for q, _ in quantiles)
        self.windows = {phase: Window() for phase in SUMMARY_PHASES}

    def observe(self, phase: str, ns: int, times: int = 1) -> None:
        self.windows[phase].observe(max(0, ns) / 1000.0, time.monotonic(), times)

    def snapshot(self) -> Tuple[SummarySnapshot, ...]:
        now = time.monotonic()
        return tuple(
            (phase, window.count, window.total, tuple(window.quantiles(self.quantiles, now)))
            for phase, window in self.windows.items()
        )


__all__ = [
    "DEFAULT_QUANTILES",
    "LatencySummaries",
    "MetricsOptions",
    "SUMMARY_PHASES",
    "SummarySnapshot",
    "Window",
    "parse_metrics_config",
]
