"""pytriton_lite._gc: the young-generation threshold while pytriton_lite serves (serve(), the CLI, workers)."""

from __future__ import annotations

import gc
import threading
import time
from typing import Iterator, List, Tuple

import numpy as np
import pytest

from pytriton_lite._gc import ENV_THRESHOLD, YOUNG_THRESHOLD, raise_young_threshold, while_serving, young_threshold
from pytriton_lite.exceptions import PyTritonBadParameterError
from pytriton_lite.model_config import Tensor
from pytriton_lite.testing import loopback_config
from pytriton_lite.triton import Triton, TritonConfig


@pytest.fixture(autouse=True)
def restore(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_THRESHOLD, raising=False)
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_the_default_threshold_is_raised_and_the_older_ones_kept():
    gc.set_threshold(700, 10, 10)
    assert raise_young_threshold() is True
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)


def test_a_higher_threshold_or_a_disabled_collector_is_left_as_it_is():
    gc.set_threshold(50_000, 5, 7)
    assert raise_young_threshold() is False
    assert gc.get_threshold() == (50_000, 5, 7)
    gc.set_threshold(0, 10, 10)  # threshold 0: automatic collection is off
    raise_young_threshold()
    assert gc.get_threshold() == (0, 10, 10)


def test_the_environment_sets_another_threshold_or_leaves_the_collector(monkeypatch):
    gc.set_threshold(700, 10, 10)
    monkeypatch.setenv(ENV_THRESHOLD, "3000")
    assert young_threshold() == 3000
    raise_young_threshold()
    assert gc.get_threshold() == (3000, 10, 10)
    monkeypatch.setenv(ENV_THRESHOLD, "0")
    gc.set_threshold(700, 10, 10)
    assert young_threshold() is None and raise_young_threshold() is False
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize("value", ["lots", "-5", "1.5"])
def test_a_bad_environment_value_is_a_typed_error_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(ENV_THRESHOLD, value)
    with pytest.raises(PyTritonBadParameterError, match=f"{ENV_THRESHOLD} must be a whole number.*{value}"):
        young_threshold()


def test_while_serving_restores_what_it_found_unless_the_program_set_its_own():
    gc.set_threshold(700, 10, 10)
    with while_serving():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)
    with while_serving():
        gc.set_threshold(1234, 10, 10)  # the program's own choice meanwhile is kept
    assert gc.get_threshold() == (1234, 10, 10)


def _identity(requests):
    return [{"y": r["x"]} for r in requests]


def _triton() -> Triton:
    triton = Triton(config=loopback_config(TritonConfig(allow_grpc=False, allow_metrics=False)))
    triton.bind(
        "m",
        _identity,
        [Tensor(name="x", shape=(-1,), dtype=np.float32)],
        [Tensor(name="y", shape=(-1,), dtype=np.float32)],
    )
    return triton


def test_serve_raises_the_threshold_while_it_serves_and_restores_it_after():
    gc.set_threshold(700, 10, 10)
    triton = _triton()
    seen: List[Tuple[int, int, int]] = []

    def watch_then_stop() -> None:
        deadline = time.monotonic() + 30
        while triton.http_port is None and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(gc.get_threshold())  # while serve() serves
        triton.stop()

    watcher = threading.Thread(target=watch_then_stop)
    watcher.start()
    triton.serve(monitoring_period_s=0.05)
    watcher.join(30)
    assert seen == [(YOUNG_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)


def test_run_leaves_the_threshold_and_a_bad_value_stops_run_before_it_starts(monkeypatch):
    gc.set_threshold(700, 10, 10)
    triton = _triton()
    try:
        triton.run()
        assert gc.get_threshold() == (700, 10, 10)  # run() returns to the program: its settings stay
    finally:
        triton.stop()
    monkeypatch.setenv(ENV_THRESHOLD, "many")
    triton = _triton()
    with pytest.raises(PyTritonBadParameterError, match=ENV_THRESHOLD):
        triton.run()
    assert triton.http_port is None
    triton.stop()
