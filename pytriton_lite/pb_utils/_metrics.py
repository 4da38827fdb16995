"""Custom metrics of python models: ``pb_utils.MetricFamily`` and its ``Metric`` s, exported on ``/metrics``.

Triton's semantics (python_backend's custom metrics API):

- ``MetricFamily(name, description, kind)`` with ``kind`` ``COUNTER``, ``GAUGE`` or ``HISTOGRAM``. Two families
  of one name share one exported family (the first description wins); the same name with another kind raises.
- ``family.Metric(labels={...})`` (histograms: ``buckets=[...]``, strictly increasing, required). Two metrics
  with the same labels share one value.
- counter: ``increment(v >= 0)``, ``value()``; gauge: ``increment(v)``, ``set(v)``, ``value()``; histogram:
  ``observe(v)``. Anything else raises ``TritonModelException``.
- A family or a metric lives while a Python object refers to it: when the last ``MetricFamily`` of a name is
  gone, the family leaves ``/metrics`` and its metrics raise on use.

The registry is the server's (the one serving the model that makes the family, found through the BLS
context); code outside a served model gets a process-wide one that no server exports.
"""

from __future__ import annotations

import bisect
import re
import threading
from typing import Dict, List, Optional, Sequence, Tuple

from pytriton_lite.pb_utils import _bls
from pytriton_lite.pb_utils._errors import TritonModelException
from pytriton_lite.types import CustomMetric, CustomMetricFamily

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_DELETED = "Invalid metric operation as the corresponding 'MetricFamily' has been deleted."
_Labels = Tuple[Tuple[str, str], ...]


class _MetricCore:
    """One exported series: its value (counter, gauge) or its buckets, count and sum (histogram)."""

    def __init__(self, labels: _Labels, buckets: Optional[Tuple[float, ...]]) -> None:
        self.labels = labels
        self.buckets = buckets or ()
        self.counts = [0] * len(self.buckets)
        self.value = 0.0
        self.count = 0
        self.refs = 0


class _FamilyCore:
    def __init__(self, name: str, description: str, kind: str) -> None:
        self.name, self.description, self.kind = name, description, kind
        self.metrics: Dict[_Labels, _MetricCore] = {}
        self.refs = 0
        self.deleted = False


class CustomMetrics:
    """The custom metric families of one server (thread-safe: models update them from instance threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.families: Dict[str, _FamilyCore] = {}

    def snapshot(self) -> List[CustomMetricFamily]:
        """What ``/metrics`` exports, families and series in creation order."""
        with self.lock:
            return [
                CustomMetricFamily(
                    family.name,
                    family.description,
                    family.kind,
                    tuple(
                        CustomMetric(m.labels, m.value, tuple(zip(m.buckets, _cumulative(m.counts))), m.count)
                        for m in family.metrics.values()
                    ),
                )
                for family in self.families.values()
            ]


def _cumulative(counts: Sequence[int]) -> List[int]:
    total, result = 0, []
    for count in counts:
        total += count
        result.append(total)
    return result


_DETACHED = CustomMetrics()  # families made outside a served model: kept, never exported


def _registry() -> CustomMetrics:
    registry = getattr(_bls.current(), "custom_metrics", None)
    return registry if isinstance(registry, CustomMetrics) else _DETACHED


COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"


class Metric:
    """One series of a ``MetricFamily``; made with ``family.Metric(labels=..., buckets=...)``."""

    def __init__(self, family: MetricFamily, labels: Dict[str, str], buckets: Optional[Sequence[float]]) -> None:
        family_core = family._core
        if family_core is None:
            raise TritonModelException(_DELETED)
        for label, text in labels.items():
            if not isinstance(label, str) or not _LABEL.fullmatch(label) or not isinstance(text, str):
                raise TritonModelException(f"invalid metric label {label!r}={text!r}: names and values are strings")
        bounds: Optional[Tuple[float, ...]] = None
        if family_core.kind == HISTOGRAM:
            if buckets is None:
                raise TritonModelException("a histogram metric needs its 'buckets'")
            bounds = tuple(float(b) for b in buckets)
            if any(b >= c for b, c in zip(bounds, bounds[1:])):
                raise TritonModelException(f"histogram buckets must be strictly increasing, got {list(buckets)}")
        key: _Labels = tuple(sorted(labels.items()))
        self._registry = family._registry
        with self._registry.lock:
            core = family_core.metrics.get(key)
            if core is None:
                core = family_core.metrics[key] = _MetricCore(key, bounds)
            core.refs += 1
        self._family = family_core
        self._core: Optional[_MetricCore] = core

    def _live(self, *kinds: str, what: str) -> _MetricCore:
        core = self._core
        if core is None or self._family.deleted:
            raise TritonModelException(_DELETED)
        if self._family.kind not in kinds:
            raise TritonModelException(f"{what} is not supported for a {self._family.kind} metric")
        return core

    def increment(self, value: float) -> None:
        core = self._live(COUNTER, GAUGE, what="increment()")
        if self._family.kind == COUNTER and value < 0:
            raise TritonModelException("a counter cannot be decremented: increment() takes a value >= 0")
        with self._registry.lock:
            core.value += float(value)

    def set(self, value: float) -> None:
        core = self._live(GAUGE, what="set()")
        with self._registry.lock:
            core.value = float(value)

    def observe(self, value: float) -> None:
        core = self._live(HISTOGRAM, what="observe()")
        with self._registry.lock:
            index = bisect.bisect_left(core.buckets, float(value))
            if index < len(core.counts):
                core.counts[index] += 1
            core.value += float(value)
            core.count += 1

    def value(self) -> float:
        core = self._live(COUNTER, GAUGE, what="value()")
        with self._registry.lock:
            return core.value

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        self._core = None
        if not isinstance(core, _MetricCore):
            return
        with self._registry.lock:
            core.refs -= 1
            if core.refs <= 0 and self._family.metrics.get(core.labels) is core:
                del self._family.metrics[core.labels]


_Series = Metric  # the class, under a name that MetricFamily.Metric (the method) does not shadow


class MetricFamily:
    """A family of custom metrics (``COUNTER``, ``GAUGE`` or ``HISTOGRAM``) exported on ``/metrics``."""

    COUNTER = COUNTER
    GAUGE = GAUGE
    HISTOGRAM = HISTOGRAM

    def __init__(self, name: str, description: str, kind: str) -> None:
        if kind not in (self.COUNTER, self.GAUGE, self.HISTOGRAM):
            raise TritonModelException(f"unknown metric kind {kind!r}: use MetricFamily.COUNTER, GAUGE or HISTOGRAM")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise TritonModelException(f"invalid metric family name {name!r}")
        self._registry = _registry()
        with self._registry.lock:
            core = self._registry.families.get(name)
            if core is None:
                core = self._registry.families[name] = _FamilyCore(name, str(description), kind)
            elif core.kind != kind:
                raise TritonModelException(
                    f"metric family '{name}' already exists with kind {core.kind}, cannot make it a {kind}"
                )
            core.refs += 1
        self._core: Optional[_FamilyCore] = core

    def Metric(self, labels: Optional[Dict[str, str]] = None, buckets: Optional[Sequence[float]] = None) -> _Series:
        """A series of this family with these labels (histograms: with these bucket bounds)."""
        return _Series(self, labels or {}, buckets)

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        self._core = None
        if not isinstance(core, _FamilyCore):
            return
        with self._registry.lock:
            core.refs -= 1
            if core.refs <= 0:
                core.deleted = True
                if self._registry.families.get(core.name) is core:
                    del self._registry.families[core.name]


__all__ = ["CustomMetrics", "Metric", "MetricFamily"]
