"""frontends._http_protocol._Cycle.respond: a complete response in one transport write, as uvicorn frames it."""

from __future__ import annotations

import asyncio
import logging
from typing import List

import pytest
from uvicorn.protocols.http.flow_control import FlowControl

from pytriton_lite.frontends._http_protocol import _JOIN_MAX, _Cycle


class _Transport:
    def __init__(self) -> None:
        self.writes: List[bytes] = []
        self.closed = False

    def write(self, data) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _cycle(transport: _Transport, *, keep_alive: bool, method: str = "POST") -> tuple:
    done: List[bool] = []
    logger = logging.getLogger("test")
    cycle = _Cycle(
        scope={"method": method},  # type: ignore[arg-type]
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=logger,
        access_logger=logger,
        access_log=False,
        default_headers=[(b"server", b"uvicorn")],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=keep_alive,
        on_response=lambda: done.append(True),
    )
    return cycle, done


@pytest.mark.parametrize("keep_alive", [True, False])
def test_respond_writes_head_and_body_once(keep_alive):
    transport = _Transport()

    async def run() -> tuple:
        cycle, done = _cycle(transport, keep_alive=keep_alive)  # built on the running loop (Python 3.9 Event)
        await cycle.respond(200, [(b"content-type", b"application/json")], [b'{"a":', memoryview(b"1}")])
        return cycle, done

    cycle, done = asyncio.run(run())
    assert len(transport.writes) == 1
    head, _, payload = transport.writes[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"content-length: 7" in lines and b"server: uvicorn" in lines and b"content-type: application/json" in lines
    assert (b"connection: close" in lines) is (not keep_alive)
    assert payload == b'{"a":1}'
    assert cycle.response_complete and done == [True] and transport.closed is (not keep_alive)


async def _respond(transport: _Transport, body: list, *, method: str = "POST", gone: bool = False) -> list:
    cycle, done = _cycle(transport, keep_alive=True, method=method)
    cycle.disconnected = gone
    await cycle.respond(200, [], body)
    return done


def test_respond_to_head_and_large_bodies():
    transport = _Transport()
    asyncio.run(_respond(transport, [b"abc"], method="HEAD"))
    assert transport.writes == [b"HTTP/1.1 200 OK\r\nserver: uvicorn\r\ncontent-length: 3\r\n\r\n"]

    transport = _Transport()
    big = b"x" * (_JOIN_MAX + 1)
    asyncio.run(_respond(transport, [big]))
    assert transport.writes[1:] == [big] and transport.writes[0].endswith(b"content-length: %d\r\n\r\n" % len(big))


def test_respond_to_a_client_that_left_writes_nothing():
    transport = _Transport()
    done = asyncio.run(_respond(transport, [b"abc"], gone=True))
    assert transport.writes == [] and done == []
