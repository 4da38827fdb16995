"""What the system and CUDA shared-memory registries (``core/shm.py``, ``core/cuda_shm.py``) share: the
unknown-region error and the selection of one region or all of them (the callers hold their lock)."""

from __future__ import annotations

from typing import Dict, List, Optional, TypeVar

from pytriton_lite._echo import echo
from pytriton_lite.exceptions import InferenceError

R = TypeVar("R")


class RegionNotFoundError(InferenceError):
    """Status of an unknown region: Triton's 404 / NOT_FOUND."""

    http_status = 404
    grpc_code = "NOT_FOUND"


def take(regions: Dict[str, R], name: Optional[str]) -> List[R]:
    """Remove region ``name`` (none when unknown, as Triton) or, with None, every region; return them."""
    if name is None:
        taken = list(regions.values())
        regions.clear()
        return taken
    region = regions.pop(name, None)
    return [region] if region is not None else []


def select(regions: Dict[str, R], name: Optional[str], kind: str) -> List[R]:
    """Region ``name`` or, with None, every region; an unknown name is ``RegionNotFoundError`` naming ``kind``."""
    if name is None:
        return list(regions.values())
    if name in regions:
        return [regions[name]]
    raise RegionNotFoundError(f"Unable to find {kind} shared memory region: '{echo(name)}'")


__all__ = ["RegionNotFoundError", "select", "take"]
