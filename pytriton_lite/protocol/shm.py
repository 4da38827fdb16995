"""Triton's system shared-memory extension on the wire: region references in infer requests, status bodies.

Pure: the regions themselves live in ``core.shm.SystemSharedMemory``; this module only knows the
``SharedMemoryAccess`` protocol it satisfies. An input or output names a region with the parameters
``shared_memory_region`` (string), ``shared_memory_byte_size`` (int) and ``shared_memory_offset`` (int,
optional, default 0). Inputs are read-only views of the mapping (zero-copy; the mapping lives as long as a
view does), outputs are copied into it when the response is encoded.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence

import numpy as np
from tritonclient.grpc import service_pb2

from pytriton_lite._echo import echo
from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.protocol.dtypes import array_from_raw, checked_element_count, output_to_raw, wire_dtype
from pytriton_lite.types import InferenceResponse

CUDA_SHM_UNSUPPORTED = (
    "CUDA shared memory is not served through front-end workers (CUDA IPC needs frontend_workers=0); "
    "use system shared memory (tritonclient.utils.shared_memory)"
)
REGION_PARAM = "shared_memory_region"
SIZE_PARAM = "shared_memory_byte_size"
OFFSET_PARAM = "shared_memory_offset"


class SharedMemoryAccess(Protocol):
    """What a codec needs of the server's region registry (``core.shm.SystemSharedMemory``)."""

    def view(self, name: str, offset: int, byte_size: int) -> memoryview:
        """A read-only view of ``byte_size`` bytes at ``offset`` in region ``name`` (bounds checked)."""
        ...

    def write(self, name: str, offset: int, data: Any) -> None:
        """Copy ``data`` into region ``name`` at ``offset`` (bounds checked)."""
        ...


@dataclass(frozen=True)
class ShmRef:
    """A tensor's place in a region: what its ``shared_memory_*`` parameters say."""

    region: str
    byte_size: int
    offset: int = 0


def _int(value: Any, key: str, where: str) -> int:
    if type(value) is not int or value < 0:
        raise InvalidArgumentError(f"Unable to parse '{key}': expected a non-negative integer {where}")
    return value


def ref_from_json(params: Mapping[str, Any], where: str, enabled: bool = True) -> Optional[ShmRef]:
    """The ``ShmRef`` of an HTTP input/output ``parameters`` object; None without ``shared_memory_region``.

    ``enabled=False`` (no registry on this path): any region is refused."""
    region = params.get(REGION_PARAM)
    if region is None:
        return None
    if not enabled:
        raise InvalidArgumentError(
            f"Unable to find shared memory region: '{echo(str(region))}' (shared memory is not accepted here) {where}"
        )
    if not isinstance(region, str):
        raise InvalidArgumentError(f"Unable to parse '{REGION_PARAM}': expected a string {where}")
    if SIZE_PARAM not in params:
        raise InvalidArgumentError(f"'{SIZE_PARAM}' is required with '{REGION_PARAM}' {where}")
    size = _int(params[SIZE_PARAM], SIZE_PARAM, where)
    offset = _int(params.get(OFFSET_PARAM, 0), OFFSET_PARAM, where)
    return ShmRef(region, size, offset)


def ref_from_grpc(params: Any, where: str) -> Optional[ShmRef]:
    """The ``ShmRef`` of a gRPC tensor's ``parameters`` map; None without ``shared_memory_region``."""
    if not params or REGION_PARAM not in params:
        return None
    region = params[REGION_PARAM]
    if region.WhichOneof("parameter_choice") != "string_param":
        raise InvalidArgumentError(f"Unable to parse '{REGION_PARAM}': expected string_param {where}")

    def number(key: str) -> int:
        param = params[key]
        choice = param.WhichOneof("parameter_choice")
        if choice not in ("int64_param", "uint64_param"):
            raise InvalidArgumentError(f"Unable to parse '{key}': expected int64_param {where}")
        return _int(getattr(param, choice), key, where)

    if SIZE_PARAM not in params:
        raise InvalidArgumentError(f"'{SIZE_PARAM}' is required with '{REGION_PARAM}' {where}")
    offset = number(OFFSET_PARAM) if OFFSET_PARAM in params else 0
    return ShmRef(region.string_param, number(SIZE_PARAM), offset)


def read_input(
    access: Optional[SharedMemoryAccess], ref: ShmRef, datatype: str, shape: Sequence[int], name: str, model: str
) -> np.ndarray:
    """An input tensor read from its region: a read-only view; the byte size must match shape x datatype."""
    if access is None:
        raise InvalidArgumentError(
            f"Unable to find shared memory region: '{echo(ref.region)}' (shared memory is not accepted here) "
            f"for input '{echo(name)}' for model '{echo(model)}'"
        )
    if datatype != "BYTES":
        itemsize = wire_dtype(datatype, name, model).itemsize
        count = checked_element_count(shape, name, model, itemsize=itemsize)
        if count * itemsize != ref.byte_size:  # checked before the region is touched
            raise InvalidArgumentError(
                f"input byte size mismatch for input '{echo(name)}' for model '{echo(model)}'. "
                f"Expected {count * itemsize}, got {ref.byte_size}"
            )
    return array_from_raw(access.view(ref.region, ref.offset, ref.byte_size), datatype, shape, name, model)


def write_outputs(
    access: Optional[SharedMemoryAccess], response: InferenceResponse, targets: Mapping[str, ShmRef]
) -> Dict[str, str]:
    """Copy every output named in ``targets`` into its region; returns name -> wire datatype of those written.

    A region smaller than the output is refused before anything is written to it.
    """
    written: Dict[str, str] = {}
    if access is None:
        return written
    for name, ref in targets.items():
        array = response.outputs.get(name)
        if array is None:
            continue
        datatype, buffer = output_to_raw(np.asarray(array))
        size = memoryview(buffer).nbytes
        if size > ref.byte_size:
            raise InvalidArgumentError(
                f"shared memory size specified with the request for output '{echo(name)}' ({ref.byte_size} bytes) "
                f"should be at least {size} bytes to hold the results"
            )
        if size:
            access.write(ref.region, ref.offset, buffer)
        written[name] = datatype
    return written


# --- status bodies ---------------------------------------------------------------------------------------


def status_json(rows: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """``GET /v2/systemsharedmemory/status``: ``[{"name","key","offset","byte_size"}]``."""
    return [{k: row[k] for k in ("name", "key", "offset", "byte_size")} for row in rows]


def status_proto(rows: Sequence[Mapping[str, Any]]) -> Any:
    """SystemSharedMemoryStatusResponse: ``regions`` keyed by name."""
    response = service_pb2.SystemSharedMemoryStatusResponse()
    for row in rows:
        status = response.regions[row["name"]]
        status.name, status.key = row["name"], row["key"]
        status.offset, status.byte_size = row["offset"], row["byte_size"]
    return response


def register_args_json(doc: Any, region: str) -> Dict[str, Any]:
    """The body of ``POST .../region/<r>/register``: ``{"key", "offset"?, "byte_size"}``, type-checked."""
    where = f"for shared memory region '{echo(region)}'"
    if not isinstance(doc, dict):
        raise InvalidArgumentError(f"failed to parse the register request JSON {where}")
    key = doc.get("key")
    if not isinstance(key, str):
        raise InvalidArgumentError(f"Shared memory register request has no valid 'key' {where}")
    if "byte_size" not in doc:
        raise InvalidArgumentError(f"Shared memory register request has no 'byte_size' {where}")
    return {
        "key": key,
        "offset": _int(doc.get("offset", 0), "offset", where),
        "byte_size": _int(doc["byte_size"], "byte_size", where),
    }


def cuda_refused() -> InvalidArgumentError:
    """CUDA shared memory register where it is not served (front-end workers): 400 / INVALID_ARGUMENT."""
    return InvalidArgumentError(CUDA_SHM_UNSUPPORTED)


def cuda_status_proto(rows: Sequence[Mapping[str, Any]]) -> Any:
    """CudaSharedMemoryStatusResponse of ``CudaSharedMemory.status`` rows."""
    response = service_pb2.CudaSharedMemoryStatusResponse()
    for row in rows:
        status = response.regions[row["name"]]
        status.name, status.device_id, status.byte_size = row["name"], row["device_id"], row["byte_size"]
    return response


def cuda_register_args_json(document: Any, region: str) -> Dict[str, Any]:
    """``raw_handle`` (``{"b64": ...}``, the cudaIpcMemHandle_t), ``device_id`` and ``byte_size`` of an HTTP
    CUDA register body, as ``CudaSharedMemory.register`` keywords."""
    where = f"for CUDA shared memory region '{echo(region)}'"
    if not isinstance(document, dict):
        raise InvalidArgumentError(f"failed to parse the request JSON buffer {where}")
    handle = document.get("raw_handle")
    encoded = handle.get("b64") if isinstance(handle, dict) else None
    if not isinstance(encoded, str):
        raise InvalidArgumentError(f"Unable to parse 'raw_handle': expected {{\"b64\": <base64>}} {where}")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgumentError(f"Unable to parse 'raw_handle': not base64 {where}") from None
    return {
        "raw_handle": raw,
        "device_id": _int(document.get("device_id"), "device_id", where),
        "byte_size": _int(document.get("byte_size"), "byte_size", where),
    }


__all__ = [
    "CUDA_SHM_UNSUPPORTED",
    "SharedMemoryAccess",
    "ShmRef",
    "cuda_refused",
    "cuda_register_args_json",
    "cuda_status_proto",
    "read_input",
    "ref_from_grpc",
    "ref_from_json",
    "register_args_json",
    "status_json",
    "status_proto",
    "write_outputs",
]
