"""Garbage-collector settings while pytriton_lite serves: ``Triton.serve()``, the ``serve`` CLI and front-end workers.

With hundreds of requests in flight, Python's default young-generation threshold (a collection every 700
allocations) collects so often that what is in flight survives into the older generations, whose collections
scan it again and again: measured 15-20 % of the serving process's CPU per request with front-end workers
(``bench/hub_cost.py --gc-threshold``), and up to 21 % more requests/s on 16 cores. So while pytriton_lite serves,
the young generation is collected every 10,000 allocations: in the front-end workers for their lifetime, and
under ``Triton.serve()`` (which the ``serve`` CLI serves with), which blocks the calling thread until the server
stops, for as long as it serves; it restores the thresholds it found when it returns. ``Triton.run()`` leaves
them alone: the program goes on doing its own work. Cycles are still collected, only less often.
``PYTRITON_LITE_GC_THRESHOLD`` overrides the threshold; ``0`` leaves the collector as it is.
"""

from __future__ import annotations

import contextlib
import gc
import os
from typing import Iterator, Optional

from pytriton_lite.exceptions import PyTritonBadParameterError

YOUNG_THRESHOLD = 10_000
ENV_THRESHOLD = "PYTRITON_LITE_GC_THRESHOLD"


def young_threshold() -> Optional[int]:
    """The young threshold to serve with: ``PYTRITON_LITE_GC_THRESHOLD`` if set (None for ``0``), else 10,000."""
    raw = os.environ.get(ENV_THRESHOLD, "").strip()
    if not raw:
        return YOUNG_THRESHOLD
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise PyTritonBadParameterError(
            f"{ENV_THRESHOLD} must be a whole number of allocations (0: leave the collector as it is), not {raw!r}"
        )
    return value or None


def raise_young_threshold(threshold: Optional[int] = None) -> bool:
    """Collect the young generation every ``threshold`` allocations (default ``young_threshold()``), never more
    often than now and never when collection is disabled. True if the threshold changed."""
    wanted = young_threshold() if threshold is None else threshold
    young = gc.get_threshold()[0]
    if not wanted or not young or young >= wanted:  # 0: collection is disabled; leave it so
        return False
    gc.set_threshold(wanted)  # the older generations' thresholds stay as they are
    return True


@contextlib.contextmanager
def while_serving() -> Iterator[None]:
    """``raise_young_threshold()`` for the ``with`` block; the thresholds found are restored after it."""
    found = gc.get_threshold()
    changed = raise_young_threshold()
    try:
        yield
    finally:
        if changed and gc.get_threshold()[0] == young_threshold():  # not if the program has set its own since
            gc.set_threshold(*found)


__all__ = ["ENV_THRESHOLD", "YOUNG_THRESHOLD", "raise_young_threshold", "while_serving", "young_threshold"]
