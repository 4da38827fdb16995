"""The data plane additions the repository spine uses: unavailable records, strict readiness, the index,
reload swaps, and load/unload refused without a model control."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from pytriton_lite.core.api import MODEL_CONTROL_DISABLED, IndexEntry
from pytriton_lite.core.dataplane import InProcessDataPlane
from pytriton_lite.core.model import Model
from pytriton_lite.exceptions import ModelNotFoundError, UnavailableError
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.types import ModelState


def _model(name: str, version: int = 1, scale: float = 1.0) -> Model:
    def infer(requests):
        return [{"y": r["x"] * scale} for r in requests]

    spec = [Tensor(name="x", shape=(-1,), dtype=np.float32)], [Tensor(name="y", shape=(-1,), dtype=np.float32)]
    return Model(name, version, [infer], *spec, ModelConfig(max_batch_size=4))


@pytest.fixture
def plane():
    loop = asyncio.new_event_loop()
    plane = InProcessDataPlane(loop)
    yield plane
    plane.stop_models()
    plane.join_instances(5.0)
    loop.close()


def test_records_list_failed_and_unloaded_versions_and_failures_keep_a_strict_server_not_ready(plane):
    plane.add_model(_model("ok"))
    assert plane.ready()
    plane.mark_unavailable("bad", 2, "KeyError: 'scale'")
    plane.mark_unavailable("gone", 1, "unloaded", failed=False)
    plane.mark_unavailable("noversion", 0, "at least one version must be available")
    assert [row.as_dict() for row in plane.repository_index()] == [
        {"name": "bad", "version": "2", "state": "UNAVAILABLE", "reason": "KeyError: 'scale'"},
        {"name": "gone", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"},
        {"name": "noversion", "state": "UNAVAILABLE", "reason": "at least one version must be available"},
        {"name": "ok", "version": "1", "state": "READY"},
    ]
    assert [row.name for row in plane.repository_index(ready_only=True)] == ["ok"]
    assert not plane.ready()
    plane.strict_readiness = False
    assert plane.ready()
    plane.strict_readiness = True
    with pytest.raises(ModelNotFoundError, match="'bad' has no available versions: KeyError: 'scale'"):
        plane.model("bad")
    with pytest.raises(ModelNotFoundError, match="^Request for unknown model: 'gone' has no available versions$"):
        plane.model("gone")
    plane.clear_unavailable("bad", 2)
    plane.clear_unavailable("noversion")
    assert plane.ready()
    assert IndexEntry("m").as_dict() == {"name": "m"}


def test_swap_in_replaces_a_version_and_retire_drains_the_old_one(plane):
    old = plane.add_model(_model("m"))
    new = plane.start_model(_model("m", scale=2.0))
    assert plane.entry("m") is old  # started, not registered yet
    replaced = plane.swap_in(new)
    assert replaced is old and old.state is ModelState.UNLOADING
    assert plane.entry("m") is new and new.state is ModelState.READY
    assert plane.loop.run_until_complete(plane.retire(old, 5.0))
    assert old.state is ModelState.UNAVAILABLE and plane.entry("m") is new  # retiring never touches the new one
    assert plane.swap_in(plane.start_model(_model("other"))) is None


def test_load_and_unload_without_a_model_control_are_refused(plane):
    for call in (plane.load_model("m"), plane.unload_model("m")):
        with pytest.raises(UnavailableError, match=MODEL_CONTROL_DISABLED):
            plane.loop.run_until_complete(call)
