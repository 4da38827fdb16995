"""Pins the uvicorn internals that ``frontends._uvicorn`` drives by hand (it never calls ``Server.serve``).

A uvicorn release that renames or reshapes any of these fails here, not as a hang or a slow shutdown in the
integration tests. pyproject.toml bounds uvicorn below the first release not checked against this file.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import pathlib
import re
import socket
import time

import pytest
import uvicorn
from uvicorn.config import Config
from uvicorn.server import Server, ServerState

from pytriton_lite.frontends import _uvicorn

PYPROJECT = pathlib.Path(__file__).resolve().parents[2] / "pyproject.toml"

# What the HTTP and metrics front ends pass to uvicorn.Config on top of the helper's own options.
FRONT_END_OPTIONS = ("ws", "proxy_headers", "date_header", "timeout_keep_alive", "http")
TLS_OPTIONS = ("ssl_certfile", "ssl_keyfile", "ssl_ca_certs", "ssl_cert_reqs")


def _version(text: str) -> tuple:
    return tuple(int(part) for part in text.split(".")[:2])


def test_installed_uvicorn_is_within_the_verified_range():
    line = next(x for x in PYPROJECT.read_text().splitlines() if x.strip().startswith('"uvicorn'))
    match = re.search(r">=([0-9.]+),<([0-9.]+)", line)
    assert match, f"uvicorn needs a lower and an upper bound in pyproject.toml: {line}"
    low, high = (_version(v) for v in match.groups())
    assert low <= _version(uvicorn.__version__) < high


def test_config_takes_every_option_we_pass():
    parameters = inspect.signature(Config.__init__).parameters
    passed = {"app", "host", "port", "backlog", "timeout_graceful_shutdown", *_uvicorn._COMMON_OPTIONS}
    assert passed | set(FRONT_END_OPTIONS) | set(TLS_OPTIONS) <= set(parameters)


def test_config_load_and_lifespan_class():
    assert list(inspect.signature(Config.load).parameters) == ["self"]
    config = Config(lambda scope, receive, send: None, **_uvicorn._COMMON_OPTIONS)
    assert config.loaded is False
    config.load()
    assert config.loaded is True
    lifespan = config.lifespan_class(config)
    assert inspect.iscoroutinefunction(lifespan.startup) and inspect.iscoroutinefunction(lifespan.shutdown)
    assert isinstance(config.date_header, bool) and hasattr(config, "timeout_graceful_shutdown")


@pytest.mark.parametrize(
    ("method", "parameters"),
    [
        ("startup", ["self", "sockets"]),
        ("main_loop", ["self"]),
        ("on_tick", ["self", "counter"]),
        ("shutdown", ["self", "sockets"]),
    ],
)
def test_server_coroutines(method, parameters):
    function = getattr(Server, method)
    assert inspect.iscoroutinefunction(function)
    assert list(inspect.signature(function).parameters) == parameters


def test_server_state_and_flags():
    assert list(inspect.signature(Server.__init__).parameters) == ["self", "config"]
    server = Server(Config(lambda scope, receive, send: None))
    assert isinstance(server.server_state, ServerState)
    assert isinstance(server.server_state.connections, set) and isinstance(server.server_state.tasks, set)
    assert (server.started, server.should_exit, server.force_exit) == (False, False, False)


async def _ok(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def _keep_alive_round_trip(embedded: _uvicorn.EmbeddedServer) -> tuple:
    reader, writer = await asyncio.open_connection("127.0.0.1", embedded.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    status = await asyncio.wait_for(reader.readline(), 10)
    await asyncio.wait_for(reader.readuntil(b"ok"), 10)
    return reader, writer, status


def test_embedded_server_serves_and_stops_promptly():
    async def main():
        embedded = _uvicorn.EmbeddedServer(_ok, label="Test", host="127.0.0.1", port=0, date_header=False)
        port = await embedded.start()
        assert port == embedded.port and port > 0
        server = embedded.server
        assert server is not None and server.started and server.servers
        reader, writer, status = await _keep_alive_round_trip(embedded)
        assert status.startswith(b"HTTP/1.1 200")
        (connection,) = server.server_state.connections  # the idle keep-alive connection
        assert callable(connection.shutdown) and connection.transport is not None
        began = time.monotonic()
        await embedded.stop()
        elapsed = time.monotonic() - began
        assert await asyncio.wait_for(reader.read(), 10) == b""  # the idle connection was closed
        writer.close()
        assert embedded.server is None and not server.server_state.connections
        return elapsed

    assert asyncio.run(main()) < 0.5  # uvicorn's own main loop and shutdown take at least 0.2 s


def test_busy_port_names_the_front_end_and_keeps_errno():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        embedded = _uvicorn.EmbeddedServer(_ok, label="Metrics", host="127.0.0.1", port=port)
        with pytest.raises(OSError) as info:
            asyncio.run(embedded.start())
    assert info.value.errno == errno.EADDRINUSE
    assert str(info.value) == f"[Errno {errno.EADDRINUSE}] Metrics address 127.0.0.1:{port} is in use"


def test_stop_before_start_is_a_no_op():
    asyncio.run(_uvicorn.EmbeddedServer(_ok, label="Test", host="127.0.0.1", port=0).stop())


def test_main_loop_refreshes_the_date_header_when_it_is_sent(monkeypatch):
    ticks = []

    async def main():
        embedded = _uvicorn.EmbeddedServer(_ok, label="Test", host="127.0.0.1", port=0, date_header=True)
        await embedded.start()
        server = embedded.server
        original = server.on_tick

        async def on_tick(counter):
            ticks.append(counter)
            return await original(counter)

        monkeypatch.setattr(server, "on_tick", on_tick)
        await asyncio.sleep(1.3)
        await embedded.stop()

    asyncio.run(main())
    assert ticks == [0, 0]  # the start-up refresh, then one a second later


def test_httptools_protocol_internals_the_hardened_protocol_drives():
    """``_http_protocol.HardenedHttpProtocol`` subclasses uvicorn's httptools protocol and relies on these."""
    from uvicorn.protocols.http.flow_control import FlowControl
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

    for name in ("connection_made", "connection_lost", "data_received", "on_message_begin", "on_headers_complete",
                 "on_body", "on_message_complete", "send_400_response", "timeout_keep_alive_handler",
                 "_unset_keepalive_if_required", "shutdown"):  # fmt: skip
        assert callable(getattr(HttpToolsProtocol, name)), name
    protocol = HttpToolsProtocol(Config(_ok), ServerState(), {}, asyncio.new_event_loop())
    for name in ("parser", "cycle", "pipeline", "flow", "connections", "headers", "url", "loop",
                 "timeout_keep_alive_task"):  # fmt: skip
        assert hasattr(protocol, name) or name == "url", name  # url appears with the first request
    assert callable(protocol.parser.should_keep_alive)  # read after the head: a request's Connection: close
    protocol.loop.close()
    cycle_init = inspect.signature(RequestResponseCycle.__init__).parameters
    assert {"message_event", "keep_alive", "flow"} <= set(cycle_init)
    source = inspect.getsource(RequestResponseCycle.__init__)
    for attribute in ("self.disconnected", "self.keep_alive", "self.response_started", "self.response_complete"):
        assert attribute in source, attribute

    async def flow_attributes() -> set:
        return set(dir(FlowControl(None)))  # type: ignore[arg-type]  # its asyncio.Event needs a loop on Python 3.9

    loop = asyncio.new_event_loop()
    try:
        assert {"resume_reading", "pause_reading", "read_paused"} <= loop.run_until_complete(flow_attributes())
    finally:
        loop.close()
