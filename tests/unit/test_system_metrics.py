"""CPU and GPU metric families (frontends/_system_metrics.py): /proc parsing, the interval cache, NVML readings."""

from __future__ import annotations

import sys
import types

import pytest

from pytriton_lite.frontends import _system_metrics as system_metrics
from pytriton_lite.frontends._system_metrics import (
    CPU_FAMILIES,
    GPU_FAMILIES,
    SystemMetricsCollector,
    cpu_utilization,
    read_cpu_times,
    read_memory,
)


def test_cpu_times_count_idle_and_iowait_as_not_busy(tmp_path):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 10 50 800 40 0 0 0 7 0\ncpu0 1 2 3 4 5 6 7 8\n")
    busy, total = read_cpu_times(stat)
    assert total == 1000
    assert busy == 160


def test_cpu_times_absent_files_give_none(tmp_path):
    assert read_cpu_times(tmp_path / "missing") is None
    (tmp_path / "odd").write_text("intr 1 2 3\n")
    assert read_cpu_times(tmp_path / "odd") is None
    assert read_memory(tmp_path / "missing") is None


def test_memory_is_total_minus_available(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n")
    assert read_memory(meminfo) == (1000 * 1024, 750 * 1024)
    (tmp_path / "partial").write_text("MemTotal: 10 kB\n")
    assert read_memory(tmp_path / "partial") is None


def test_utilization_is_the_busy_share_between_two_readings():
    assert cpu_utilization((100, 1000), (150, 1100)) == pytest.approx(0.5)
    assert cpu_utilization((100, 1000), (100, 1000)) == 0.0
    assert cpu_utilization((100, 1000), (500, 1100)) == 1.0  # clamped


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _values(collector):
    return {family.name: [(s.labels, s.value) for s in family.samples] for family in collector.collect()}


def test_readings_are_cached_for_one_interval(monkeypatch):
    readings = iter([(0, 100), (50, 200), (50, 300), (250, 400)])
    monkeypatch.setattr(system_metrics, "read_cpu_times", lambda: next(readings))
    monkeypatch.setattr(system_metrics, "read_memory", lambda: (4096, 1024))
    clock = _Clock()
    collector = SystemMetricsCollector(gpu=False, interval_ms=2000, clock=clock)  # construction reads (0, 100)
    # the first scrape reads (50, 200): half busy
    first = _values(collector)
    assert set(first) == set(CPU_FAMILIES)
    assert first["nv_cpu_utilization"] == [({}, 0.5)]
    assert first["nv_cpu_memory_total_bytes"] == [({}, 4096)]
    assert first["nv_cpu_memory_used_bytes"] == [({}, 1024)]
    clock.now = 1.0  # within the interval: nothing is read again
    assert _values(collector)["nv_cpu_utilization"] == [({}, 0.5)]
    clock.now = 2.5  # reads (50, 300): idle
    assert _values(collector)["nv_cpu_utilization"] == [({}, 0.0)]
    clock.now = 5.0  # reads (250, 400): all busy
    assert _values(collector)["nv_cpu_utilization"] == [({}, 1.0)]


def test_cpu_metrics_can_be_turned_off():
    collector = SystemMetricsCollector(cpu=False, gpu=False)
    assert _values(collector) == {}


class _Util:
    gpu = 37


class _Memory:
    total = 80 * 2**30
    used = 3 * 2**30


def _fake_pynvml(fail_power: bool = False) -> types.ModuleType:
    module = types.ModuleType("pynvml")
    energy = iter([1_000_000.0, 1_500_000.0, 2_000_000.0])
    module.nvmlInit = lambda: None  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: 1  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda index: f"handle{index}"  # type: ignore[attr-defined]
    module.nvmlDeviceGetUUID = lambda handle: b"GPU-0000-aaaa"  # type: ignore[attr-defined]
    module.nvmlDeviceGetUtilizationRates = lambda handle: _Util()  # type: ignore[attr-defined]
    module.nvmlDeviceGetMemoryInfo = lambda handle: _Memory()  # type: ignore[attr-defined]

    def power(handle):
        if fail_power:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return 250_000

    module.nvmlDeviceGetPowerUsage = power  # type: ignore[attr-defined]
    module.nvmlDeviceGetPowerManagementLimit = lambda handle: 700_000  # type: ignore[attr-defined]
    module.nvmlDeviceGetTotalEnergyConsumption = lambda handle: next(energy)  # type: ignore[attr-defined]
    return module


def test_gpu_families_from_nvml_with_tritons_units_and_labels(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml())
    collector = SystemMetricsCollector(cpu=False, interval_ms=0)
    assert collector.gpu_available
    values = _values(collector)
    assert set(values) == set(GPU_FAMILIES)
    label = {"gpu_uuid": "GPU-0000-aaaa"}
    assert values["nv_gpu_utilization"] == [(label, pytest.approx(0.37))]
    assert values["nv_gpu_memory_total_bytes"] == [(label, 80 * 2**30)]
    assert values["nv_gpu_memory_used_bytes"] == [(label, 3 * 2**30)]
    assert values["nv_gpu_power_usage"] == [(label, 250.0)]
    assert values["nv_gpu_power_limit"] == [(label, 700.0)]
    assert values["nv_energy_consumption"] == [(label, 500.0)]  # joules since start, not the device's total
    collector.close()


def test_a_field_the_gpu_does_not_report_is_left_out(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(fail_power=True))
    values = _values(SystemMetricsCollector(cpu=False, interval_ms=0))
    assert values["nv_gpu_power_usage"] == []
    assert values["nv_gpu_utilization"]


def test_no_nvml_or_no_driver_means_no_gpu_families(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert not SystemMetricsCollector(cpu=False).gpu_available
    broken = _fake_pynvml()

    def no_driver():
        raise RuntimeError("NVML Shared Library Not Found")

    broken.nvmlInit = no_driver  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    collector = SystemMetricsCollector(cpu=False)
    assert not collector.gpu_available
    assert _values(collector) == {}
