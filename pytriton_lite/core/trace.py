"""Triton's trace extension in the core: settings (global and per model), sampling and trace records.

``TraceSettings`` holds what ``/v2/trace/setting`` and the TraceSetting RPC show and change: a global layer
(started from ``--trace-config`` / ``TritonConfig(trace_config=...)``; clearing a field returns it to that
start value) and a layer per model holding only the fields set for that model (the others follow the global
layer; clearing a field removes it). Settings are validated here with Triton's error texts; the codecs in
``protocol/trace_json.py`` only move them on and off the wire.

Sampling: every ``trace_rate``-th request of a settings owner (the model when it sets its own rate, else the
global layer) is traced while ``trace_count`` (-1 = no limit) is not used up; each trace decrements the count
of its owner, so a GET shows what is left. A ``Trace`` collects the timestamps the core really measures, in
``time.monotonic_ns()`` like the batcher's: REQUEST_START (the data plane took the request), QUEUE_START
(submitted to the batcher), COMPUTE_START (its batch was dispatched to an instance), COMPUTE_INPUT_END (the
instance called the model), COMPUTE_OUTPUT_START (the model returned), COMPUTE_END (outputs validated),
REQUEST_END (the response was handed back). Traces are written as Triton's JSON trace file (``TraceFile``):
every trace at stop when ``log_frequency`` is 0, else ``<trace_file>.<n>`` every ``log_frequency`` traces.
Everything here runs on the serving loop.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from pytriton_lite._dtypes import to_triton_dtype
from pytriton_lite.exceptions import InvalidArgumentError, PyTritonValidationError, UnsupportedError

LOGGER = logging.getLogger("pytriton_lite.trace")

LEVELS = ("TIMESTAMPS", "TENSORS")  # "OFF" is the empty level
MODES = ("triton", "opentelemetry")
FIELDS = ("trace_level", "trace_rate", "trace_count", "log_frequency")
DEFAULTS: Dict[str, Any] = {"trace_level": (), "trace_rate": 1000, "trace_count": -1, "log_frequency": 0}
TRACE_FILE_FIXED = "trace file location can not be updated through network protocol"
OTEL_MISSING = (
    "trace mode 'opentelemetry' needs the opentelemetry-sdk package (pip install opentelemetry-sdk); "
    "without it only trace mode 'triton' is available"
)
_UINT32_MAX = 2**32 - 1
_INT32_MAX = 2**31 - 1
#: with log_frequency 0 Triton keeps every trace until shutdown; past this many they are spilled to numbered files
MAX_BUFFERED_TRACES = 10_000


def _integer(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidArgumentError(f"Unable to parse '{key}', got: {value}")
    text = str(value).strip()
    try:
        return int(text, 10)
    except ValueError:
        raise InvalidArgumentError(f"Unable to parse '{key}', got: {value}") from None


def _unsigned(key: str, value: Any) -> int:
    number = _integer(key, value)
    if not 0 <= number <= _UINT32_MAX:
        raise InvalidArgumentError(f"Unable to parse '{key}', value is out of range [ 0, {_UINT32_MAX} ], got: {value}")
    return number


def parse_level(value: Any) -> Tuple[str, ...]:
    """``["OFF"]`` -> (); ``["TIMESTAMPS", "TENSORS"]`` -> both, in Triton's order."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise InvalidArgumentError(f"Unable to parse 'trace_level', expected an array of strings, got: {value}")
    if "OFF" in values:
        if len(values) != 1:
            raise InvalidArgumentError("Expect only one trace level 'OFF' is specified")
        return ()
    for level in values:
        if level not in LEVELS:
            raise InvalidArgumentError(
                f"Unable to parse 'trace_level', got: {level} (expected OFF, TIMESTAMPS or TENSORS)"
            )
    return tuple(level for level in LEVELS if level in values)


def parse_value(key: str, value: Any) -> Any:
    """One setting's value from the wire (strings, or an array for ``trace_level``), validated."""
    if key == "trace_level":
        return parse_level(value)
    if key == "trace_count":
        count = _integer(key, value)
        if count < -1:
            raise InvalidArgumentError(f"Unable to parse 'trace_count'. Expecting value >= -1, got:{value}")
        if count > _INT32_MAX:
            raise InvalidArgumentError(
                f"Unable to parse 'trace_count', value is out of range [ -1, {_INT32_MAX} ], got: {value}"
            )
        return count
    return _unsigned(key, value)


def opentelemetry_available() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.sdk.trace") is not None
    except ImportError:  # no "opentelemetry" package at all
        return False


class Trace:
    """One sampled request: its id, its model and the timestamps (name, monotonic ns) collected so far."""

    __slots__ = ("id", "model_name", "model_version", "request_id", "level", "log_frequency", "timestamps")

    def __init__(self, trace_id: int, model_name: str, model_version: str, request_id: str, settings: Dict[str, Any]):
        self.id = trace_id
        self.model_name = model_name
        self.model_version = model_version
        self.request_id = request_id
        self.level: Tuple[str, ...] = settings["trace_level"]
        self.log_frequency: int = settings["log_frequency"]
        self.timestamps: List[Tuple[str, int]] = [("REQUEST_START", time.monotonic_ns())]

    def stamp(self, name: str, ns: int) -> None:
        if ns:
            self.timestamps.append((name, ns))


def _tensor_text(array: np.ndarray) -> str:
    flat = np.asarray(array).reshape(-1)
    if flat.dtype == object:
        return ",".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat)
    return ",".join(str(v) for v in flat.tolist())


def _wire_dtype(array: np.ndarray) -> str:
    try:
        return to_triton_dtype(array.dtype)
    except Exception:  # noqa: BLE001 - a trace never fails a request
        return str(array.dtype)


def _tensor_records(trace_id: int, activity: str, tensors: Mapping[str, np.ndarray]) -> List[Dict[str, Any]]:
    records = []
    for name, array in tensors.items():
        array = np.asarray(array)
        records.append(
            {
                "id": trace_id,
                "activity": activity,
                "tensor": {
                    "name": name,
                    "data": _tensor_text(array),
                    "shape": ",".join(str(d) for d in array.shape),
                    "dtype": _wire_dtype(array),
                },
            }
        )
    return records


class TraceFile:
    """Triton's JSON trace output for one ``trace_file``: a JSON array of records per file written."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.records: List[Dict[str, Any]] = []
        self.traces = 0  # traces in ``records``
        self.index = 0  # the next ``<path>.<index>``
        self._spill_warned = False

    def add(self, records: List[Dict[str, Any]], log_frequency: int) -> None:
        self.records.extend(records)
        self.traces += 1
        if log_frequency > 0 and self.traces >= log_frequency:
            self._write_numbered()
        elif log_frequency == 0 and self.traces >= MAX_BUFFERED_TRACES:
            if not self._spill_warned:
                LOGGER.warning("%d traces buffered (log_frequency 0): writing them to %s.<n>", self.traces, self.path)
                self._spill_warned = True
            self._write_numbered()

    def _write_numbered(self) -> None:
        path = f"{self.path}.{self.index}"
        self.index += 1
        self._write(path)

    def _write(self, path: str) -> None:
        records, self.records, self.traces = self.records, [], 0
        try:
            with open(path, "w", encoding="utf-8") as stream:
                json.dump(records, stream, indent=None, separators=(",", ":"))
        except OSError as exc:
            LOGGER.error("Cannot write the trace file %s: %s", path, exc)

    def close(self) -> None:
        """Write what is buffered: to ``trace_file`` if nothing was numbered yet, else to the next number."""
        if self.records:
            if self.index:
                self._write_numbered()
            else:
                self._write(self.path)


class TraceSettings:
    """The trace settings (global, per model), the sampler and the trace file writer."""

    def __init__(
        self,
        *,
        level: Sequence[str] = (),
        rate: int = 1000,
        count: int = -1,
        log_frequency: int = 0,
        trace_file: str = "",
        mode: str = "triton",
        mode_options: Optional[Mapping[str, str]] = None,
    ) -> None:
        if mode not in MODES:
            raise PyTritonValidationError(f"invalid trace mode {mode!r}: expected triton or opentelemetry")
        if mode == "opentelemetry" and not opentelemetry_available():
            raise PyTritonValidationError(OTEL_MISSING)
        self.start_values: Dict[str, Any] = {
            "trace_level": tuple(level),
            "trace_rate": int(rate),
            "trace_count": int(count),
            "log_frequency": int(log_frequency),
        }
        self.global_values = dict(self.start_values)
        self.models: Dict[str, Dict[str, Any]] = {}
        self.trace_file = trace_file
        self.mode = mode
        self.mode_options = dict(mode_options or {})
        self._seen: Dict[str, int] = {}  # requests counted toward the next sample, per rate owner
        self._next_id = 1
        self._file = TraceFile(trace_file) if trace_file else None
        self._otel: Any = None
        self._warned_no_file = False
        self.active = False  # any layer traces at all: the data plane's one-attribute fast path
        self._refresh()

    @classmethod
    def from_config(cls, specs: Optional[Sequence[str]]) -> TraceSettings:
        """``--trace-config`` entries: ``level=TIMESTAMPS``, ``rate=N``, ``count=N``, ``mode=triton``,
        ``triton,file=PATH``, ``triton,log-frequency=N``, ``opentelemetry,<key>=<value>``."""
        values: Dict[str, Any] = {}
        levels: List[str] = []
        options: Dict[str, str] = {}
        for spec in specs or ():
            text = str(spec)
            head, comma, rest = text.partition(",")
            section, setting = (head, rest) if comma and "=" not in head else ("", text)  # a path may hold ","
            key, sep, value = setting.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or section not in ("", "triton", "opentelemetry"):
                raise PyTritonValidationError(f"invalid --trace-config {text!r}: expected [<mode>,]<setting>=<value>")
            try:
                if section == "opentelemetry":
                    options[key] = value
                elif key == "level":
                    levels.append(value)
                elif key in ("rate", "count"):
                    values[key] = parse_value(f"trace_{key}", value)
                elif key == "mode":
                    values["mode"] = value
                elif key == "file" and section in ("", "triton"):
                    values["trace_file"] = value
                elif key == "log-frequency" and section in ("", "triton"):
                    values["log_frequency"] = parse_value("log_frequency", value)
                else:
                    raise PyTritonValidationError(f"invalid --trace-config {text!r}: unknown setting {key!r}")
            except InvalidArgumentError as exc:
                raise PyTritonValidationError(f"invalid --trace-config {text!r}: {exc}") from None
        try:
            level = parse_level(levels) if levels else ()
        except InvalidArgumentError as exc:
            raise PyTritonValidationError(f"invalid --trace-config level: {exc}") from None
        return cls(level=level, mode_options=options, **values)

    # --- settings (the extension's GET / POST) ---------------------------------------------------------

    def effective(self, model: str = "") -> Dict[str, Any]:
        """The values that apply to ``model`` (its own fields over the global ones), or the global ones."""
        own = self.models.get(model) if model else None
        if not own:
            return dict(self.global_values)
        return {key: own.get(key, self.global_values[key]) for key in FIELDS}

    def view(self, model: str = "") -> Dict[str, Any]:
        """Triton's response: string values, ``trace_level`` an array (``["OFF"]`` when off)."""
        values = self.effective(model)
        result: Dict[str, Any] = {
            "trace_level": list(values["trace_level"]) or ["OFF"],
            "trace_rate": str(values["trace_rate"]),
            "trace_count": str(values["trace_count"]),
        }
        if self.mode == "triton":
            result["log_frequency"] = str(values["log_frequency"])
            result["trace_file"] = self.trace_file
        result["trace_mode"] = self.mode
        result.update(self.mode_options)
        return result

    def update(self, model: str, changes: Mapping[str, Any]) -> None:
        """Apply ``changes`` (key -> wire value, None = clear) to ``model``'s layer or the global one.

        Every value is checked before any is applied. An empty ``changes`` for a model removes its settings
        (Triton: a model named without settings). Unknown keys are ignored, as Triton does.
        """
        if "trace_file" in changes:
            raise UnsupportedError(TRACE_FILE_FIXED)
        parsed = {
            key: None if changes[key] is None else parse_value(key, changes[key]) for key in FIELDS if key in changes
        }
        if model and not changes:
            self.models.pop(model, None)
            self._seen.pop(model, None)
        elif model:
            own = self.models.setdefault(model, {})
            for key, value in parsed.items():
                if value is None:
                    own.pop(key, None)
                else:
                    own[key] = value
            if "trace_rate" not in own:
                self._seen.pop(model, None)
            if not own:
                del self.models[model]
        else:
            for key, value in parsed.items():
                self.global_values[key] = self.start_values[key] if value is None else value
        self._refresh()

    def forget(self, model: str) -> None:
        """A model left the server: drop its layer."""
        self.models.pop(model, None)
        self._seen.pop(model, None)
        self._refresh()

    def _refresh(self) -> None:
        layers = [self.global_values, *self.models.values()]
        self.active = any(layer.get("trace_level") for layer in layers)

    # --- sampling and records --------------------------------------------------------------------------

    def start(self, model_name: str, model_version: str, request_id: str = "") -> Optional[Trace]:
        """A ``Trace`` when this request is sampled, else None (cheap: called only while ``active``)."""
        own = self.models.get(model_name)
        values = self.effective(model_name)
        if not values["trace_level"] or values["trace_count"] == 0 or values["trace_rate"] == 0:
            return None
        rate_owner = model_name if own and "trace_rate" in own else ""
        seen = self._seen.get(rate_owner, 0) + 1
        if seen < values["trace_rate"]:
            self._seen[rate_owner] = seen
            return None
        self._seen[rate_owner] = 0
        if values["trace_count"] > 0:
            count_layer = own if own and "trace_count" in own else self.global_values
            count_layer["trace_count"] -= 1
        trace = Trace(self._next_id, model_name, model_version, request_id, values)
        self._next_id += 1
        return trace

    async def follow(self, trace: Trace, item: Any, future: asyncio.Future[Any]) -> Any:
        """Await a queued request's response and record its trace, whatever the outcome."""
        response = None
        try:
            response = await future
            return response
        finally:
            self.complete(trace, item, response)

    def complete(self, trace: Trace, item: Any, response: Any, inputs: Optional[Mapping[str, Any]] = None) -> None:
        """Record ``trace`` from the batcher's ``Pending`` item (its queue time and batch timestamps)."""
        trace.stamp("QUEUE_START", getattr(item, "enqueue_ns", 0))
        batch = getattr(item, "batch", None)
        if batch is not None:
            trace.stamp("COMPUTE_START", batch.start_ns)
            trace.stamp("COMPUTE_INPUT_END", batch.infer_start_ns)
            trace.stamp("COMPUTE_OUTPUT_START", batch.infer_end_ns)
            trace.stamp("COMPUTE_END", batch.end_ns)
        trace.stamp("REQUEST_END", time.monotonic_ns())
        if inputs is None:
            request = getattr(item, "inference_request", None)
            inputs = request.inputs if request is not None else {}
        outputs = getattr(response, "outputs", None) or {}
        if self.mode == "opentelemetry":
            self._emit_span(trace)
            return
        records = self.records(trace, inputs, outputs)
        if self._file is None:
            if not self._warned_no_file:
                LOGGER.warning("Tracing is on but no trace file is set (--trace-config triton,file=...): dropped")
                self._warned_no_file = True
            return
        self._file.add(records, trace.log_frequency)

    @staticmethod
    def records(trace: Trace, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> List[Dict[str, Any]]:
        """Triton's JSON trace records of one trace: its model, its timestamps, its tensors (TENSORS)."""
        version: Any = int(trace.model_version) if trace.model_version.isdigit() else trace.model_version
        head: Dict[str, Any] = {"id": trace.id, "model_name": trace.model_name, "model_version": version}
        head["request_id"] = trace.request_id
        head["parent_id"] = 0
        records = [head]
        if "TIMESTAMPS" in trace.level:
            ordered = sorted(trace.timestamps, key=lambda stamp: stamp[1])
            records.append({"id": trace.id, "timestamps": [{"name": n, "ns": ns} for n, ns in ordered]})
        if "TENSORS" in trace.level:
            records += _tensor_records(trace.id, "TENSOR_QUEUE_INPUT", inputs)
            records += _tensor_records(trace.id, "TENSOR_BACKEND_OUTPUT", outputs)
        return records

    def _emit_span(self, trace: Trace) -> None:
        """OpenTelemetry mode: one span per request (Triton's model span), on the global tracer provider."""
        if self._otel is None:
            self._otel = importlib.import_module("opentelemetry.trace").get_tracer("pytriton_lite")
        offset = time.time_ns() - time.monotonic_ns()  # spans carry wall-clock ns
        stamps = dict(trace.timestamps)
        span = self._otel.start_span(
            trace.model_name,
            start_time=stamps["REQUEST_START"] + offset,
            attributes={"triton.model_name": trace.model_name, "triton.model_version": trace.model_version},
        )
        for name, ns in trace.timestamps:
            span.add_event(name, timestamp=ns + offset)
        span.end(end_time=stamps.get("REQUEST_END", time.monotonic_ns()) + offset)

    def close(self) -> None:
        """At stop: write the traces still buffered."""
        if self._file is not None:
            self._file.close()


__all__ = ["TraceSettings", "Trace", "TraceFile", "parse_level", "parse_value", "TRACE_FILE_FIXED", "OTEL_MISSING"]
