"""Triton's system shared-memory extension in the core: the server's registry of client regions.

A client creates a POSIX shared-memory object (``shm_open``, i.e. a file in ``/dev/shm``; tritonclient's
``tritonclient.utils.shared_memory``) and registers it by name with its key, an offset and a byte size. The
registry opens ``/dev/shm/<key>`` by name (never following a symlink, never a path with ``/`` in it), maps
it, and hands codecs views of it (``view``) and writes into it (``write``), always bounds-checked.

Lifetime: inputs are read-only ``memoryview`` slices of the ``mmap`` (zero-copy). ``mmap.close()`` refuses
while such views exist (Python counts buffer exports), so an unregister while a request still holds a view
drops the registry's reference instead: the mapping is unmapped when the last view goes. A view can never
outlive its mapping, and unregister never waits for a request. The registry is used from the serving loop
and from the HTTP front end's offload threads, hence the lock.

Trust: a region is memory the client shares with the server, as in Triton. If the client shrinks the file
(``ftruncate``) after registering it, reading the lost pages would fault; every access re-checks the file's
size first, which narrows that window to the client's own race.
"""

from __future__ import annotations

import mmap
import os
import stat
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from pytriton_lite._echo import echo
from pytriton_lite.core._regions import RegionNotFoundError, select, take
from pytriton_lite.core.cuda_shm import CudaSharedMemory
from pytriton_lite.exceptions import InvalidArgumentError

SHM_DIR = "/dev/shm"
MAX_REGIONS = 4096  # each region holds a file descriptor
_RESERVED_PREFIX = "triton_python_backend_shm_region_"  # Triton refuses its python backend's own regions


@dataclass
class _Region:
    name: str
    key: str
    offset: int
    byte_size: int
    fd: int
    mapping: mmap.mmap

    def release(self) -> None:
        try:
            self.mapping.close()
        except BufferError:
            pass  # a request still holds a view: the mapping goes with the last view
        os.close(self.fd)

    def check(self, offset: int, size: int) -> int:
        """Absolute start in the mapping of ``size`` bytes at ``offset`` in this region; Triton's errors."""
        name = echo(self.name)
        if offset > self.byte_size:
            raise InvalidArgumentError(f"Invalid offset for shared memory region: '{name}'")
        if offset + size > self.byte_size:
            raise InvalidArgumentError(f"Invalid offset + byte size for shared memory region: '{name}'")
        start = self.offset + offset
        if os.fstat(self.fd).st_size < start + size:  # the client shrank the file: reading would fault
            raise InvalidArgumentError(f"shared memory region '{name}' is smaller than when it was registered")
        return start


def _open_key(key: str, name: str) -> int:
    """Open ``/dev/shm/<key>`` read-write; the key is a name (``/name`` as shm_open takes it), not a path."""
    bare = key[1:] if key.startswith("/") else key
    if not bare or "/" in bare or "\0" in bare or bare in (".", "..") or bare.startswith(_RESERVED_PREFIX):
        raise InvalidArgumentError(
            f"failed to register shared memory region '{echo(name)}': invalid key '{echo(key)}' "
            "(the name of a POSIX shared memory object, e.g. '/my_region', without further '/')"
        )
    try:
        fd = os.open(os.path.join(SHM_DIR, bare), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidArgumentError(f"Unable to open shared memory region: '{echo(key)}' ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidArgumentError(f"Unable to open shared memory region: '{echo(key)}' (not a regular file)")
    return fd


class SystemSharedMemory:
    """The registered system shared-memory regions of one server (both front ends share it)."""

    def __init__(self, max_regions: int = MAX_REGIONS) -> None:
        self._regions: Dict[str, _Region] = {}
        self._lock = threading.Lock()
        self.max_regions = max_regions
        # Triton's CUDA shared-memory regions (core/cuda_shm.py): requests name either kind of region alike;
        # None where CUDA regions are not served (front-end workers)
        self.cuda: Optional[CudaSharedMemory] = CudaSharedMemory()

    def register(self, name: str, key: str, offset: int, byte_size: int) -> None:
        """Map ``byte_size`` bytes at ``offset`` of ``/dev/shm/<key>`` as region ``name``."""
        if not name:
            raise InvalidArgumentError("failed to register shared memory region: the region name is empty")
        with self._lock:
            if name in self._regions:
                raise InvalidArgumentError(f"shared memory region '{echo(name)}' already in manager")
            if len(self._regions) >= self.max_regions:
                raise InvalidArgumentError(
                    f"failed to register shared memory region '{echo(name)}': too many regions "
                    f"({self.max_regions}); unregister some first"
                )
            fd = _open_key(key, name)
            try:
                size = os.fstat(fd).st_size
                if offset < 0 or byte_size <= 0 or offset + byte_size > size:
                    raise InvalidArgumentError(f"failed to register shared memory region '{echo(name)}': invalid args")
                mapping = mmap.mmap(fd, offset + byte_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            except BaseException:
                os.close(fd)
                raise
            self._regions[name] = _Region(name, key, offset, byte_size, fd, mapping)

    def unregister(self, name: Optional[str] = None) -> None:
        """Forget region ``name`` (unknown: nothing happens, as Triton), or every region when None."""
        with self._lock:
            regions = take(self._regions, name)
        for region in regions:
            region.release()

    def status(self, name: Optional[str] = None) -> List[Dict[str, Any]]:
        """``{"name","key","offset","byte_size"}`` of region ``name`` (404 when unknown) or of every region."""
        with self._lock:
            regions = select(self._regions, name, "system")
            return [{"name": r.name, "key": r.key, "offset": r.offset, "byte_size": r.byte_size} for r in regions]

    def _region(self, name: str) -> _Region:
        region = self._regions.get(name)
        if region is None:
            raise InvalidArgumentError(f"Unable to find shared memory region: '{echo(name)}'")
        return region

    def view(self, name: str, offset: int, byte_size: int) -> memoryview:
        """A read-only view of ``byte_size`` bytes at ``offset`` in region ``name``; it keeps the mapping alive.
        A CUDA region's bytes are copied to host memory."""
        if name not in self._regions and self.cuda is not None and self.cuda.has(name):
            return self.cuda.view(name, offset, byte_size)
        with self._lock:
            region = self._region(name)
            start = region.check(offset, byte_size)
            return memoryview(region.mapping)[start : start + byte_size].toreadonly()

    def write(self, name: str, offset: int, data: Any) -> None:
        """Copy the bytes of ``data`` into region ``name`` at ``offset`` (a CUDA region: to the device)."""
        if name not in self._regions and self.cuda is not None and self.cuda.has(name):
            self.cuda.write(name, offset, data)
            return
        source = memoryview(data).cast("B")
        with self._lock:
            region = self._region(name)
            start = region.check(offset, source.nbytes)
            target = memoryview(region.mapping)[start : start + source.nbytes]  # pins the mapping
        with target:  # copied outside the lock: a large output does not hold up other requests' lookups
            target[:] = source

    def close(self) -> None:
        """Release every region (server stop)."""
        SystemSharedMemory.unregister(self)
        if self.cuda is not None:
            self.cuda.close()

    def __len__(self) -> int:
        return len(self._regions)


__all__ = ["MAX_REGIONS", "RegionNotFoundError", "SystemSharedMemory"]
