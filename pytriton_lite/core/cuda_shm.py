"""Triton's CUDA shared-memory extension: GPU buffers a client shares with the server through CUDA IPC.

A client allocates device memory, takes its ``cudaIpcMemHandle_t`` (64 bytes) and registers it with a name,
the device and a size; the server opens the handle (``cudaIpcOpenMemHandle``) and reads inputs from it and
writes outputs into it (``cudaMemcpy``; the callable gets host numpy arrays, as with every other input). The
CUDA runtime is loaded with ctypes on the first registration, from ``PYTRITON_LITE_CUDART``, torch's or the
``nvidia-cuda-runtime`` wheel's bundled copy, or the system's ``libcudart``; without a runtime or a GPU the
registration is refused with the reason, and nothing else changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.util
import os
import sys
import threading
from typing import Any, Dict, List, Optional

from pytriton_lite._echo import echo
from pytriton_lite.core._regions import select, take
from pytriton_lite.exceptions import InvalidArgumentError

_IPC_HANDLE_BYTES = 64
_LAZY_PEER_ACCESS = 1  # cudaIpcMemLazyEnablePeerAccess
_HOST_TO_DEVICE, _DEVICE_TO_HOST = 1, 2


class _IpcHandle(ctypes.Structure):
    _fields_ = [("reserved", ctypes.c_ubyte * _IPC_HANDLE_BYTES)]


def _candidates() -> List[str]:
    paths = [os.environ.get("PYTRITON_LITE_CUDART", "")]
    for package in ("torch", "nvidia.cuda_runtime"):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            for base in spec.submodule_search_locations:
                paths += sorted(glob.glob(os.path.join(base, "lib", "libcudart.so*")))
    for entry in sys.path:  # the nvidia-cuda-runtime wheels: nvidia/cuda_runtime/lib, nvidia/cu13/lib, ...
        paths += sorted(glob.glob(os.path.join(entry, "nvidia", "*", "lib", "libcudart.so*")))
    found = ctypes.util.find_library("cudart")
    paths += [found or "", "libcudart.so", "libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0"]
    return [p for p in paths if p]


class CudaRuntime:
    """The few CUDA runtime calls CUDA IPC needs, through ctypes."""

    def __init__(self) -> None:
        errors = []
        self._lib: Any = None
        for path in _candidates():
            try:
                self._lib = ctypes.CDLL(path)
                break
            except OSError as exc:
                errors.append(str(exc))
        if self._lib is None:
            raise OSError("no CUDA runtime (libcudart) found; set PYTRITON_LITE_CUDART to its path")
        lib = self._lib
        lib.cudaGetErrorString.restype = ctypes.c_char_p
        lib.cudaIpcOpenMemHandle.argtypes = [ctypes.POINTER(ctypes.c_void_p), _IpcHandle, ctypes.c_uint]
        lib.cudaIpcCloseMemHandle.argtypes = [ctypes.c_void_p]
        lib.cudaMemcpy.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        count = ctypes.c_int(0)
        self._check(lib.cudaGetDeviceCount(ctypes.byref(count)), "cudaGetDeviceCount")
        self.device_count = count.value

    def _check(self, status: int, call: str) -> None:
        if status != 0:
            text = self._lib.cudaGetErrorString(status)
            raise OSError(f"{call} failed: {text.decode() if text else status}")

    def open(self, handle: bytes, device_id: int) -> int:
        self._check(self._lib.cudaSetDevice(device_id), "cudaSetDevice")
        pointer = ctypes.c_void_p()
        ipc = _IpcHandle.from_buffer_copy(handle)  # every byte, NULs included (a c_char field stops at one)
        self._check(
            self._lib.cudaIpcOpenMemHandle(ctypes.byref(pointer), ipc, _LAZY_PEER_ACCESS), "cudaIpcOpenMemHandle"
        )
        return int(pointer.value or 0)

    def close(self, pointer: int, device_id: int) -> None:
        self._lib.cudaSetDevice(device_id)
        self._lib.cudaIpcCloseMemHandle(ctypes.c_void_p(pointer))

    def to_host(self, pointer: int, device_id: int, size: int) -> bytearray:
        out = bytearray(size)
        if size:
            self._check(self._lib.cudaSetDevice(device_id), "cudaSetDevice")
            target = (ctypes.c_char * size).from_buffer(out)
            self._check(self._lib.cudaMemcpy(target, ctypes.c_void_p(pointer), size, _DEVICE_TO_HOST), "cudaMemcpy")
        return out

    def to_device(self, pointer: int, device_id: int, data: memoryview) -> None:
        size = data.nbytes
        if size:
            self._check(self._lib.cudaSetDevice(device_id), "cudaSetDevice")
            source = bytes(data) if data.readonly else data
            buffer = (
                ctypes.c_char_p(source) if isinstance(source, bytes) else (ctypes.c_char * size).from_buffer(source)
            )
            self._check(self._lib.cudaMemcpy(ctypes.c_void_p(pointer), buffer, size, _HOST_TO_DEVICE), "cudaMemcpy")


class _CudaRegion:
    __slots__ = ("name", "device_id", "byte_size", "pointer")

    def __init__(self, name: str, device_id: int, byte_size: int, pointer: int) -> None:
        self.name, self.device_id, self.byte_size, self.pointer = name, device_id, byte_size, pointer

    def check(self, offset: int, size: int) -> None:
        if offset < 0 or size < 0 or offset + size > self.byte_size:
            raise InvalidArgumentError(
                f"Invalid offset + byte size for shared memory region: '{echo(self.name)}' "
                f"(offset {offset} + byte size {size} > region size {self.byte_size})"
            )


class CudaSharedMemory:
    """The registered CUDA regions; the runtime is loaded on the first registration."""

    def __init__(self, max_regions: int = 256) -> None:
        self._regions: Dict[str, _CudaRegion] = {}
        self._lock = threading.Lock()
        self._runtime: Optional[CudaRuntime] = None
        self.max_regions = max_regions

    def _cuda(self) -> CudaRuntime:
        if self._runtime is None:
            try:
                self._runtime = CudaRuntime()
            except OSError as exc:
                raise InvalidArgumentError(f"failed to register CUDA shared memory region: {exc}") from None
        return self._runtime

    def register(self, name: str, raw_handle: bytes, device_id: int, byte_size: int) -> None:
        if not name:
            raise InvalidArgumentError("failed to register CUDA shared memory region: the region name is empty")
        if len(raw_handle) != _IPC_HANDLE_BYTES:
            raise InvalidArgumentError(
                f"failed to register CUDA shared memory region '{echo(name)}': raw_handle must be "
                f"{_IPC_HANDLE_BYTES} bytes (a cudaIpcMemHandle_t), got {len(raw_handle)}"
            )
        if device_id < 0 or byte_size < 0:
            raise InvalidArgumentError(f"failed to register CUDA shared memory region '{echo(name)}': bad device/size")
        runtime = self._cuda()
        if device_id >= runtime.device_count:
            raise InvalidArgumentError(
                f"failed to register CUDA shared memory region '{echo(name)}': no GPU {device_id} "
                f"({runtime.device_count} visible)"
            )
        with self._lock:
            if name in self._regions:
                raise InvalidArgumentError(f"shared memory region '{echo(name)}' already in manager")
            if len(self._regions) >= self.max_regions:
                raise InvalidArgumentError(f"failed to register CUDA shared memory region '{echo(name)}': too many")
            try:
                pointer = runtime.open(raw_handle, device_id)
            except OSError as exc:
                raise InvalidArgumentError(
                    f"failed to register CUDA shared memory region '{echo(name)}': {exc}"
                ) from None
            self._regions[name] = _CudaRegion(name, device_id, byte_size, pointer)

    def unregister(self, name: Optional[str] = None) -> None:
        with self._lock:
            regions = take(self._regions, name)
        if self._runtime is not None:
            for region in regions:
                self._runtime.close(region.pointer, region.device_id)

    def status(self, name: Optional[str] = None) -> List[Dict[str, Any]]:
        with self._lock:
            regions = select(self._regions, name, "cuda")
        return [{"name": r.name, "device_id": r.device_id, "byte_size": r.byte_size} for r in regions]

    def has(self, name: str) -> bool:
        return name in self._regions

    def view(self, name: str, offset: int, byte_size: int) -> memoryview:
        """``byte_size`` bytes at ``offset`` of region ``name``, copied to host memory."""
        region = self._regions[name]
        region.check(offset, byte_size)
        assert self._runtime is not None
        return memoryview(self._runtime.to_host(region.pointer + offset, region.device_id, byte_size))

    def write(self, name: str, offset: int, data: Any) -> None:
        source = memoryview(data).cast("B")
        region = self._regions[name]
        region.check(offset, source.nbytes)
        assert self._runtime is not None
        self._runtime.to_device(region.pointer + offset, region.device_id, source)

    def close(self) -> None:
        self.unregister()


__all__ = ["CudaRuntime", "CudaSharedMemory"]
