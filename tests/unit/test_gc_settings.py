"""pytriton_lite._gc: the young-generation threshold of the processes pytriton_lite owns."""

from __future__ import annotations

import gc
from typing import Iterator

import pytest

from pytriton_lite._gc import YOUNG_THRESHOLD, raise_young_threshold


@pytest.fixture(autouse=True)
def restore() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_the_default_threshold_is_raised_and_the_older_ones_kept():
    gc.set_threshold(700, 10, 10)
    raise_young_threshold()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)


def test_a_higher_threshold_or_a_disabled_collector_is_left_as_it_is():
    gc.set_threshold(50_000, 5, 7)
    raise_young_threshold()
    assert gc.get_threshold() == (50_000, 5, 7)
    gc.set_threshold(0, 10, 10)  # threshold 0: automatic collection is off
    raise_young_threshold()
    assert gc.get_threshold() == (0, 10, 10)
