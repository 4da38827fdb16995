"""Large request decodes and response encodes, run on one worker thread instead of the serving loop.

Decoding a 32 MB JSON body takes seconds of pure Python; on the loop it stalls every other client for
that long. At or above ``threshold`` bytes the work goes to one ``pytriton_lite-http-codec`` thread: the
loop keeps serving, and Python's GIL switch interval (5 ms) bounds how long it waits, except during one
long C call (``json.loads`` of the whole document), which the thread cannot split. One thread, so that
several huge bodies queue behind each other instead of contending for the GIL together.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from typing import Any, Callable, Mapping, Optional, TypeVar

T = TypeVar("T")
ENV_THRESHOLD = "PYTRITON_LITE_HTTP_OFFLOAD_BYTES"  # benchmarks measure the loop-only baseline with "0"


class Offloader:
    """``run(size, work)``: ``work()`` inline below ``threshold`` bytes, else on the codec thread."""

    def __init__(self, threshold: int) -> None:
        override = os.environ.get(ENV_THRESHOLD)
        self.threshold = int(override) if override not in (None, "") else int(threshold)
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None

    def wanted(self, size: int) -> bool:
        return 0 < self.threshold <= size

    async def run(self, size: int, work: Callable[[], T]) -> T:
        if not self.wanted(size):
            return work()
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pytriton_lite-http-codec")
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def outputs_size(outputs: Mapping[str, Any]) -> int:
    """Bytes held by a response's output arrays: what its encoding costs grows with it."""
    return sum(int(getattr(array, "nbytes", 0)) for array in outputs.values())


__all__ = ["Offloader", "ENV_THRESHOLD", "outputs_size"]
