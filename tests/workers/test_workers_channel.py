"""workers/channel.py over real socketpairs: Channel (asyncio protocol, on uvloop and on plain asyncio) and
BlockingCaller against a Channel that answers on a loop of its own."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, Callable, Iterator, List, Tuple

import numpy as np
import pytest

from pytriton_lite.exceptions import DecoupledModelError, InvalidArgumentError, ModelNotFoundError
from pytriton_lite.workers import wire
from pytriton_lite.workers.channel import _BUFFER_BYTES, _OWN_BUFFER_BYTES, BlockingCaller, Channel

TIMEOUT_S = 20.0
OPEN: List[Channel] = []  # every channel a test made, closed by the ``run`` fixture


def _loops() -> List[Any]:
    factories: List[Any] = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return factories
    factories.append(pytest.param(uvloop.new_event_loop, id="uvloop"))
    return factories


@pytest.fixture(params=_loops())
def run(request) -> Iterator[Callable[[Any], Any]]:
    """``run(coroutine)`` on a fresh loop of the parametrized kind, bounded in time."""
    loop = request.param()

    def go(coro: Any) -> Any:
        return loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT_S))

    try:
        yield go
    finally:
        # a failed test leaves its channels open; uvloop's close() can hang on open transports
        for channel in OPEN:
            if channel.transport is not None:
                channel.transport.abort()
        OPEN.clear()
        loop.run_until_complete(asyncio.sleep(0.01))
        loop.close()


class Inbox:
    """What one Channel received, and whether it heard that the other end left."""

    def __init__(self) -> None:
        self.messages: List[Tuple[Any, ...]] = []
        self.lost = 0
        self.changed = asyncio.Event()

    def on_message(self, message: Tuple[Any, ...]) -> None:
        self.messages.append(message)
        self.changed.set()

    def on_lost(self) -> None:
        self.lost += 1
        self.changed.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            self.changed.clear()
            await self.changed.wait()


class CountingTransport:
    """A transport that counts its ``writelines`` calls and the frames each wrote."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.calls = 0
        self.frames: List[int] = []  # frames per call

    def writelines(self, parts: Any) -> None:
        self.calls += 1
        parts = list(parts)
        frames, at = 0, 0
        while at < len(parts):  # head, meta, one part per buffer
            frames += 1
            at += 2 + wire.parse_prefix(bytes(parts[at])[: wire.PREFIX.size])[1]
        self.frames.append(frames)
        self.transport.writelines(parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def channel_on(sock: socket.socket, inbox: Inbox) -> Channel:
    loop = asyncio.get_running_loop()
    _, channel = await loop.create_unix_connection(lambda: Channel(inbox.on_message, inbox.on_lost), sock=sock)
    OPEN.append(channel)
    return channel


async def channel_pair() -> Tuple[Channel, Inbox, Channel, Inbox]:
    a, b = socket.socketpair()
    inbox_a, inbox_b = Inbox(), Inbox()
    return await channel_on(a, inbox_a), inbox_a, await channel_on(b, inbox_b), inbox_b


def test_many_small_frames_sent_in_one_iteration_arrive_in_order(run):
    async def main() -> None:
        left, _, right, inbox = await channel_pair()
        writes = CountingTransport(left.transport)
        left.transport = writes  # uvloop's transports take no new attributes: wrap it instead
        for i in range(2000):
            left.send((wire.OK, i, {"v": np.full(3, i, np.int64), "s": "x" * (i % 50)}))
        await inbox.until(lambda: len(inbox.messages) == 2000)
        # what one iteration sent leaves in one writelines, as one BATCH frame (one pickle, one header)
        assert writes.calls == 1 and writes.frames == [1]
        assert [m[1] for m in inbox.messages] == list(range(2000))
        assert all(m[2]["v"].tolist() == [i] * 3 and m[2]["s"] == "x" * (i % 50) for i, m in enumerate(inbox.messages))
        left.close()
        right.close()

    run(main())


def test_a_frame_split_byte_by_byte_is_put_back_together(run):
    async def main() -> None:
        raw, theirs = socket.socketpair()
        raw.setblocking(False)
        inbox = Inbox()
        channel = await channel_on(theirs, inbox)
        messages = [
            (wire.OK, 1, np.arange(6, dtype=np.float32).reshape(2, 3)),
            (wire.CALL, 2, "statistics", ("m", "")),
            (wire.ITEM, 3, {"t": np.array([b"ab", b""], dtype=object), "e": np.zeros(0, np.int64)}),
        ]
        data = b"".join(bytes(p) for m in messages for p in wire.encode(m))
        for i in range(len(data)):
            raw.send(data[i : i + 1])
            await asyncio.sleep(0)  # the loop reads between the bytes
            if i % 16 == 0:
                await asyncio.sleep(0.001)
        await inbox.until(lambda: len(inbox.messages) == 3)
        got = inbox.messages
        assert got[0][:2] == (wire.OK, 1) and got[0][2].tolist() == messages[0][2].tolist()
        assert got[1] == messages[1]
        assert got[2][2]["t"].tolist() == [b"ab", b""] and got[2][2]["e"].shape == (0,)
        assert inbox.lost == 0
        channel.close()
        raw.close()

    run(main())


@pytest.mark.parametrize(
    "nbytes",
    [_OWN_BUFFER_BYTES + 1, _BUFFER_BYTES - 1000, _BUFFER_BYTES + 1, 20 * 1024 * 1024],
    ids=["just-own", "fits-buffer", "over-buffer", "20MiB"],
)
def test_a_large_frame_between_small_ones_arrives_equal(run, nbytes):
    async def main() -> None:
        left, _, right, inbox = await channel_pair()
        big = np.random.default_rng(0).integers(0, 255, nbytes, dtype=np.uint8)
        left.send((wire.OK, 1, "before"))
        left.send((wire.OK, 2, {"x": big, "y": big[:10].astype(np.float32)}))
        left.send((wire.OK, 3, "after"))
        await inbox.until(lambda: len(inbox.messages) == 3)
        assert [m[:2] for m in inbox.messages] == [(wire.OK, 1), (wire.OK, 2), (wire.OK, 3)]
        got = inbox.messages[1][2]
        assert got["x"].shape == big.shape and np.array_equal(got["x"], big)
        assert got["y"].tolist() == big[:10].astype(np.float32).tolist()
        assert inbox.messages[2][2] == "after"
        # and the channel keeps working after it
        left.send((wire.OK, 4, np.arange(3)))
        await inbox.until(lambda: len(inbox.messages) == 4)
        assert inbox.messages[3][2].tolist() == [0, 1, 2]
        left.close()
        right.close()

    run(main())


def test_a_20_mib_frame_is_read_into_a_buffer_of_its_own(run):
    async def main() -> None:
        left, _, right, inbox = await channel_pair()
        big = np.arange(5 * 1024 * 1024, dtype=np.float32)  # 20 MiB
        left.send((wire.OK, 1, big))
        await inbox.until(lambda: len(inbox.messages) == 1)
        got = inbox.messages[0][2]
        assert np.array_equal(got, big)
        # not copied out of the reusable buffer, which stays its first size
        assert len(right._buffer) == _BUFFER_BYTES and right._own is None
        left.close()
        right.close()

    run(main())


def test_frames_both_ways_at_once(run):
    async def main() -> None:
        left, inbox_left, right, inbox_right = await channel_pair()
        for i in range(300):
            left.send((wire.INFER, i, np.full(100 * (i % 7), i, np.int32)))
            right.send((wire.OK, i, np.full(5000 * (i % 5), i, np.int16)))
            if i % 10 == 0:
                await asyncio.sleep(0)
        await inbox_left.until(lambda: len(inbox_left.messages) == 300)
        await inbox_right.until(lambda: len(inbox_right.messages) == 300)
        assert all(m[2].size == 5000 * (i % 5) and (m[2] == i).all() for i, m in enumerate(inbox_left.messages))
        assert all(m[2].size == 100 * (i % 7) and (m[2] == i).all() for i, m in enumerate(inbox_right.messages))
        left.close()
        right.close()

    run(main())


def test_a_corrupt_prefix_closes_the_channel_and_calls_on_lost_once(run):
    async def main() -> None:
        raw, theirs = socket.socketpair()
        inbox = Inbox()
        channel = await channel_on(theirs, inbox)
        raw.sendall(b"".join(bytes(p) for p in wire.encode((wire.OK, 1, "fine"))))
        raw.sendall(wire.PREFIX.pack(10, wire.MAX_BUFFERS + 1) + b"\x00" * 64)
        await inbox.until(lambda: inbox.lost > 0)
        assert inbox.messages == [(wire.OK, 1, "fine")]
        assert channel.closed and inbox.lost == 1
        channel.send((wire.OK, 2, "dropped"))  # sending on a closed channel is a no-op, not an error
        raw.settimeout(5)
        assert raw.recv(100) == b""  # our end was closed too
        channel.close()
        await asyncio.sleep(0.01)
        assert inbox.lost == 1
        raw.close()

    run(main())


def test_the_other_end_closing_calls_on_lost(run):
    async def main() -> None:
        left, inbox_left, right, inbox_right = await channel_pair()
        left.send((wire.STOP,))
        await inbox_right.until(lambda: len(inbox_right.messages) == 1)
        left.close()
        await inbox_right.until(lambda: inbox_right.lost > 0)
        await inbox_left.until(lambda: inbox_left.lost > 0)
        assert right.closed and inbox_right.messages == [(wire.STOP,)]
        right.close()

    run(main())


# --- BlockingCaller ----------------------------------------------------------------------------------------


class Responder:
    """A Channel on a loop in its own thread that answers CALL(method, args) as the serving process does."""

    def __init__(self, sock: socket.socket, loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
        self.loop = loop_factory()
        self.sock = sock
        self.channel: Any = None
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            _, self.channel = await self.loop.create_unix_connection(
                lambda: Channel(self.on_message, lambda: None), sock=self.sock
            )
            self.started.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()
        self.loop.run_until_complete(asyncio.sleep(0.01))  # the closed transport lets go of its socket
        self.loop.close()

    def on_message(self, message: Tuple[Any, ...]) -> None:
        kind, call_id, method, args = message
        assert kind == wire.CALL
        try:
            value = getattr(self, "do_" + method)(*args)
        except Exception as exc:  # noqa: BLE001 - answered to the caller
            self.channel.send((wire.ERR, call_id, wire.pack_error(exc)))
        else:
            self.channel.send((wire.OK, call_id, value))

    def do_add(self, a: int, b: int) -> int:
        return a + b

    def do_echo(self, value: Any) -> Any:
        return value

    def do_model(self, name: str) -> Any:
        raise ModelNotFoundError(f"Request for unknown model: '{name}' is not found")

    def do_decoupled(self, name: str) -> Any:
        raise DecoupledModelError(name)

    def do_bad(self) -> Any:
        raise InvalidArgumentError("bad input")

    def stop(self) -> None:
        def finish() -> None:
            self.channel.close()
            self.loop.stop()

        self.loop.call_soon_threadsafe(finish)
        self.thread.join(10)


@pytest.fixture(params=_loops())
def caller(request) -> Iterator[BlockingCaller]:
    mine, theirs = socket.socketpair()
    responder = Responder(theirs, request.param)
    caller = BlockingCaller(mine)
    try:
        yield caller
    finally:
        caller.close()
        responder.stop()


def test_blocking_call_returns_the_value(caller):
    assert caller.call("add", 2, 3) == 5
    assert caller.call("echo", {"a": [1, 2]}) == {"a": [1, 2]}
    # over the own-buffer size, within a socket buffer (a larger one: see the short-send test below)
    big = np.arange(_OWN_BUFFER_BYTES // 2, dtype=np.int32)
    assert np.array_equal(caller.call("echo", big), big)
    assert caller.call("echo", np.zeros(0, np.float32)).shape == (0,)


def test_blocking_call_raises_the_original_class(caller):
    with pytest.raises(ModelNotFoundError, match="'nope' is not found") as caught:
        caller.call("model", "nope")
    assert caught.value.http_status == 404 and caught.value.grpc_code == "NOT_FOUND"
    with pytest.raises(DecoupledModelError) as decoupled:
        caller.call("decoupled", "streamer")
    assert decoupled.value.model == "streamer"
    with pytest.raises(InvalidArgumentError, match="bad input"):
        caller.call("bad")
    with pytest.raises(AttributeError):  # an unknown method: the responder's own error, raised here
        caller.call("nothing")
    assert caller.call("add", 1, 1) == 2  # the socket is still in step after errors


def test_blocking_calls_from_several_threads_are_one_at_a_time(caller):
    results: List[Any] = []
    errors: List[BaseException] = []

    def many(base: int) -> None:
        try:
            for i in range(100):
                results.append((base, i, caller.call("add", base, i)))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=many, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and len(results) == 400
    assert all(value == base + i for base, i, value in results)


def test_the_blocking_reader_hands_out_a_batch_frames_messages_one_by_one():
    mine, theirs = socket.socketpair()
    try:
        batch = [(wire.OK, i, np.full(2, i)) for i in range(3)]
        theirs.sendall(b"".join(bytes(p) for p in [*wire.encode_many(batch), *wire.encode((wire.END, 9))]))
        reader = BlockingCaller(mine)
        got = [reader.read() for _ in range(4)]
        assert [m[:2] for m in got] == [(wire.OK, 0), (wire.OK, 1), (wire.OK, 2), (wire.END, 9)]
        assert got[2][2].tolist() == [2, 2]
    finally:
        mine.close()
        theirs.close()


def test_blocking_call_after_the_other_end_closed_raises_connection_error():
    mine, theirs = socket.socketpair()
    caller = BlockingCaller(mine)
    theirs.close()
    with pytest.raises((ConnectionError, BrokenPipeError)):
        caller.call("add", 1, 2)
    caller.close()


class ShortSends:
    """A blocking socket whose ``sendmsg`` takes at most ``limit`` bytes per call, as the kernel may (a signal,
    memory pressure: seen here with a 12 MiB frame after 430 KB); everything else is the real socket's."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self.sock = sock
        self.limit = limit

    def sendmsg(self, parts: Any) -> int:
        data = b"".join(bytes(p) for p in parts)[: self.limit]
        return self.sock.sendmsg([data])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def test_blocking_call_sends_the_whole_frame_when_the_kernel_takes_part_of_it():
    mine, theirs = socket.socketpair()
    responder = Responder(theirs, asyncio.new_event_loop)
    mine.settimeout(2)  # the bug is a hang: bounded here
    caller = BlockingCaller(ShortSends(mine, 1000))  # type: ignore[arg-type]
    try:
        assert caller.call("add", 2, 3) == 5  # a frame under the limit
        value = np.arange(10_000, dtype=np.int64)  # 80 kB: 80 short sends
        assert np.array_equal(caller.call("echo", value), value)
    finally:
        caller.close()
        responder.stop()
