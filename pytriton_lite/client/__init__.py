"""Clients for models served over Triton's v2 protocol (PyTriton's ``pytriton.client``), on tritonclient.

``ModelClient`` (sync), ``FuturesModelClient`` (thread pool), ``AsyncioModelClient`` (asyncio) and the
streaming ``DecoupledModelClient`` / ``AsyncioDecoupledModelClient`` (gRPC only).
"""

from pytriton_lite.client._asyncio import AsyncioModelClient
from pytriton_lite.client._asyncio_decoupled import AsyncioDecoupledModelClient
from pytriton_lite.client._decoupled import DecoupledModelClient
from pytriton_lite.client._futures import FuturesModelClient
from pytriton_lite.client._sync import ModelClient

__all__ = [
    "ModelClient",
    "FuturesModelClient",
    "AsyncioModelClient",
    "DecoupledModelClient",
    "AsyncioDecoupledModelClient",
]
