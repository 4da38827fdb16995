"""WorkerHub's answers to INFER messages, with a stand-in data plane (no processes, no sockets)."""

from __future__ import annotations

from typing import Any, Callable, List, Tuple

import numpy as np

from pytriton_lite.exceptions import QueueTimeoutError, UnavailableError
from pytriton_lite.types import InferenceRequest, InferenceResponse
from pytriton_lite.workers import wire
from pytriton_lite.workers.hub import WorkerHub, _Worker


class Sent:
    closed = False

    def __init__(self) -> None:
        self.messages: List[Tuple[Any, ...]] = []

    def send(self, message: Tuple[Any, ...]) -> None:
        self.messages.append(message)


class Item:
    def __init__(self) -> None:
        self.closed = False

    def cancel(self) -> None:
        self.closed = True


class Plane:
    """``submit`` as the in-process data plane's: queue (keep the reply), answer at once, or refuse."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.replies: List[Callable[[Any], None]] = []

    def submit(self, request: InferenceRequest, reply: Callable[[Any], None]) -> Item:
        item = Item()
        if self.mode == "refuse":
            raise UnavailableError("Exceeds maximum queue size for model 'm'")
        if self.mode == "at_once":  # e.g. a REJECT timeout of a microsecond, expired while it was queued
            item.closed = True
            reply(QueueTimeoutError("Request timeout expired"))
        else:
            self.replies.append(reply)
        return item


def infer(hub: WorkerHub, worker: _Worker, call_id: int) -> None:
    request = InferenceRequest("m", "", {"x": np.zeros((1, 2), np.float32)})
    hub._on_message(worker, (wire.INFER, call_id, wire.pack_request(request)))


def hub_with(mode: str) -> Tuple[WorkerHub, _Worker, Sent, Plane]:
    plane = Plane(mode)
    hub = WorkerHub(plane, None, 0)  # type: ignore[arg-type]
    worker = _Worker(0)
    sent = Sent()
    worker.channel = sent  # type: ignore[assignment]
    return hub, worker, sent, plane


def test_a_queued_request_is_answered_once_and_forgotten():
    hub, worker, sent, plane = hub_with("queue")
    infer(hub, worker, 7)
    assert list(worker.tasks) == [7] and not sent.messages
    plane.replies[0](InferenceResponse("m", "1", {"y": np.ones((1, 2), np.float32)}, id="r"))
    assert [m[:2] for m in sent.messages] == [(wire.OK, 7)] and not worker.tasks
    assert wire.unpack_response(sent.messages[0][2]).outputs["y"].tolist() == [[1.0, 1.0]]


def test_a_request_answered_while_it_was_queued_is_not_kept():
    hub, worker, sent, _ = hub_with("at_once")
    infer(hub, worker, 3)
    assert [m[:2] for m in sent.messages] == [(wire.ERR, 3)]
    assert isinstance(wire.unpack_error(sent.messages[0][2]), QueueTimeoutError)
    assert not worker.tasks  # nothing left behind for a request that is over


def test_a_refused_request_is_answered_with_its_error():
    hub, worker, sent, _ = hub_with("refuse")
    infer(hub, worker, 5)
    error = wire.unpack_error(sent.messages[0][2])
    assert sent.messages[0][:2] == (wire.ERR, 5) and isinstance(error, UnavailableError)
    assert "maximum queue size" in str(error) and not worker.tasks


def test_cancel_drops_the_queued_item():
    hub, worker, sent, _ = hub_with("queue")
    infer(hub, worker, 9)
    item = worker.tasks[9]
    hub._on_message(worker, (wire.CANCEL, 9))
    assert item.closed and not worker.tasks and not sent.messages
