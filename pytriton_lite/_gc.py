"""Garbage-collector settings for the processes pytriton_lite owns: the ``serve`` CLI and front-end workers.

With hundreds of requests in flight, Python's default young-generation threshold (a collection every 700
allocations) collects so often that what is in flight survives into the old generation, and then full
collections scan the whole heap: measured 15-20 % of the serving process's CPU per request with front-end
workers (``bench/hub_cost.py --gc-threshold``). A ``Triton()`` embedded in your program leaves the setting to
you (docs/scaling.md says how); cycles are still collected, only less often.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def raise_young_threshold(threshold: int = YOUNG_THRESHOLD) -> None:
    """Collect the young generation every ``threshold`` allocations (never less often than now)."""
    young = gc.get_threshold()[0]
    if young and young < threshold:  # 0: collection is disabled; leave it so
        gc.set_threshold(threshold)  # the older generations' thresholds stay as they are


__all__ = ["YOUNG_THRESHOLD", "raise_young_threshold"]
