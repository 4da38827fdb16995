"""Triton's CPU and GPU metric families, read at scrape time and refreshed at most every ``metrics_interval_ms``.

CPU (Linux, from ``/proc``): ``nv_cpu_utilization`` (0..1, the whole machine, over the last interval),
``nv_cpu_memory_total_bytes`` and ``nv_cpu_memory_used_bytes`` (MemTotal - MemAvailable), as Triton reports them.
GPU (optional ``nvidia-ml-py``; nothing is exported without it or without a GPU): ``nv_gpu_utilization`` (0..1),
``nv_gpu_memory_total_bytes``, ``nv_gpu_memory_used_bytes``, ``nv_gpu_power_usage`` and ``nv_gpu_power_limit``
(watts), ``nv_energy_consumption`` (joules), each labelled ``gpu_uuid`` as Triton's are.

Readings are cached for one interval, so a scraper polling faster than ``metrics_interval_ms`` (Triton's default
2000) costs one cached lookup and no NVML call on the serving loop.
"""

from __future__ import annotations

import logging
import pathlib
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LOGGER = logging.getLogger("pytriton_lite.metrics")

DEFAULT_METRICS_INTERVAL_MS = 2000  # tritonserver's --metrics-interval-ms
CPU_FAMILIES = ("nv_cpu_utilization", "nv_cpu_memory_total_bytes", "nv_cpu_memory_used_bytes")
GPU_FAMILIES = (
    "nv_gpu_utilization",
    "nv_gpu_memory_total_bytes",
    "nv_gpu_memory_used_bytes",
    "nv_gpu_power_usage",
    "nv_gpu_power_limit",
    "nv_energy_consumption",
)
_HELP = {
    "nv_cpu_utilization": "CPU utilization rate [0.0 - 1.0]",
    "nv_cpu_memory_total_bytes": "CPU total memory (RAM), in bytes",
    "nv_cpu_memory_used_bytes": "CPU used memory (RAM), in bytes",
    "nv_gpu_utilization": "GPU utilization rate [0.0 - 1.0)",
    "nv_gpu_memory_total_bytes": "GPU total memory, in bytes",
    "nv_gpu_memory_used_bytes": "GPU used memory, in bytes",
    "nv_gpu_power_usage": "GPU power usage in watts",
    "nv_gpu_power_limit": "GPU power management limit in watts",
    "nv_energy_consumption": "GPU energy consumption in joules since the Triton Server started",
}


def read_cpu_times(stat: pathlib.Path = pathlib.Path("/proc/stat")) -> Optional[Tuple[int, int]]:
    """(busy, total) jiffies of all CPUs from the first line of /proc/stat; None where there is none."""
    try:
        first = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    # guest times are already included in user/nice
    total = sum(values[:8])
    return total - idle, total


def read_memory(meminfo: pathlib.Path = pathlib.Path("/proc/meminfo")) -> Optional[Tuple[int, int]]:
    """(total, used) bytes: MemTotal and MemTotal - MemAvailable; None where /proc/meminfo is missing."""
    try:
        lines = meminfo.read_text().splitlines()
    except OSError:
        return None
    fields: Dict[str, int] = {}
    for line in lines:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            fields[key] = int(parts[0]) * 1024  # kB
    if "MemTotal" not in fields or "MemAvailable" not in fields:
        return None
    return fields["MemTotal"], fields["MemTotal"] - fields["MemAvailable"]


def cpu_utilization(previous: Tuple[int, int], current: Tuple[int, int]) -> float:
    """Busy share of the jiffies between two readings, clamped to [0, 1]."""
    busy, total = current[0] - previous[0], current[1] - previous[1]
    if total <= 0:
        return 0.0
    return min(1.0, max(0.0, busy / total))


class _Nvml:
    """The NVML calls used here, through nvidia-ml-py's ``pynvml``; ``available`` is False without it or a GPU."""

    def __init__(self) -> None:
        self.available = False
        self._nvml: Any = None
        self._handles: List[Tuple[str, Any]] = []
        self._energy_start: Dict[str, float] = {}
        try:
            import pynvml  # type: ignore[import-not-found,unused-ignore]

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            for index in range(count):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                uuid = pynvml.nvmlDeviceGetUUID(handle)
                self._handles.append((uuid.decode() if isinstance(uuid, bytes) else str(uuid), handle))
        except ImportError:
            return
        except Exception as exc:  # noqa: BLE001 - no driver, no device: GPU metrics are simply absent
            LOGGER.debug("GPU metrics disabled: %s", exc)
            return
        self._nvml = pynvml
        self.available = bool(self._handles)
        for uuid, handle in self._handles:
            self._energy_start[uuid] = self._call(pynvml.nvmlDeviceGetTotalEnergyConsumption, handle) or 0.0

    @staticmethod
    def _call(fn: Callable[..., Any], *args: Any) -> Optional[float]:
        try:
            return float(fn(*args))
        except Exception:  # noqa: BLE001 - a field this GPU does not report is left out
            return None

    def read(self) -> Dict[str, List[Tuple[str, float]]]:
        nvml = self._nvml
        out: Dict[str, List[Tuple[str, float]]] = {name: [] for name in GPU_FAMILIES}
        for uuid, handle in self._handles:
            values: Dict[str, Optional[float]] = {}
            try:
                util = nvml.nvmlDeviceGetUtilizationRates(handle)
                values["nv_gpu_utilization"] = float(util.gpu) / 100.0
            except Exception:  # noqa: BLE001
                values["nv_gpu_utilization"] = None
            try:
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                values["nv_gpu_memory_total_bytes"] = float(memory.total)
                values["nv_gpu_memory_used_bytes"] = float(memory.used)
            except Exception:  # noqa: BLE001
                pass
            power = self._call(nvml.nvmlDeviceGetPowerUsage, handle)  # milliwatts
            values["nv_gpu_power_usage"] = None if power is None else power / 1000.0
            limit = self._call(nvml.nvmlDeviceGetPowerManagementLimit, handle)
            values["nv_gpu_power_limit"] = None if limit is None else limit / 1000.0
            energy = self._call(nvml.nvmlDeviceGetTotalEnergyConsumption, handle)  # millijoules
            if energy is not None:
                values["nv_energy_consumption"] = (energy - self._energy_start.get(uuid, 0.0)) / 1000.0
            for name, value in values.items():
                if value is not None:
                    out[name].append((uuid, value))
        return out

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutting down must not raise
                pass
            self._nvml = None


class SystemMetricsCollector(Collector):
    """CPU and (optionally) GPU gauges, cached for ``interval_ms``; ``clock`` is injectable for tests."""

    def __init__(
        self,
        *,
        cpu: bool = True,
        gpu: bool = True,
        interval_ms: int = DEFAULT_METRICS_INTERVAL_MS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = max(0, int(interval_ms)) / 1000.0
        self._clock = clock
        self._cpu_times = read_cpu_times() if cpu else None
        self._cpu = self._cpu_times is not None and read_memory() is not None
        self._nvml: Optional[_Nvml] = _Nvml() if gpu else None
        self._utilization = 0.0
        self._cached: Optional[Dict[str, List[Tuple[str, float]]]] = None
        self._read_at = -1.0

    @property
    def gpu_available(self) -> bool:
        return self._nvml is not None and self._nvml.available

    def _refresh(self) -> Dict[str, List[Tuple[str, float]]]:
        now = self._clock()
        if self._cached is not None and now - self._read_at < self.interval_s:
            return self._cached
        values: Dict[str, List[Tuple[str, float]]] = {}
        if self._cpu:
            times = read_cpu_times()
            if times is not None and self._cpu_times is not None and times[1] > self._cpu_times[1]:
                self._utilization = cpu_utilization(self._cpu_times, times)
                self._cpu_times = times
            memory = read_memory()
            values["nv_cpu_utilization"] = [("", self._utilization)]
            if memory is not None:
                values["nv_cpu_memory_total_bytes"] = [("", float(memory[0]))]
                values["nv_cpu_memory_used_bytes"] = [("", float(memory[1]))]
        if self.gpu_available:
            assert self._nvml is not None
            values.update(self._nvml.read())
        self._cached, self._read_at = values, now
        return values

    def collect(self) -> Iterator[Metric]:
        for name, samples in self._refresh().items():
            if name in CPU_FAMILIES:
                family = GaugeMetricFamily(name, _HELP[name])
                for _, value in samples:
                    family.add_metric([], value)
            else:
                family = GaugeMetricFamily(name, _HELP[name], labels=["gpu_uuid"])
                for uuid, value in samples:
                    family.add_metric([uuid], value)
            yield family

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml.close()


__all__ = [
    "CPU_FAMILIES",
    "DEFAULT_METRICS_INTERVAL_MS",
    "GPU_FAMILIES",
    "SystemMetricsCollector",
    "cpu_utilization",
    "read_cpu_times",
    "read_memory",
]
