"""Helpers for the front-end worker tests: models, clients, and what /proc says about processes and sockets
(psutil is not a dependency). Imported as a sibling module (pytest's ``prepend`` import mode)."""

from __future__ import annotations

import http.client
import json
import os
import time
from typing import Any, Dict, Iterable, List, Optional, Set

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from pytriton_lite.config import TritonConfig
from pytriton_lite.model_config import ModelConfig, Tensor

WORKER_PACKAGE = "pytriton_lite.workers."  # in the command line of a worker and of its zygote


def worker_config(**values: Any) -> TritonConfig:
    """Two front-end workers, every port picked by the OS, whatever the environment says."""
    settings: Dict[str, Any] = {"frontend_workers": 2, "http_port": 0, "grpc_port": 0, "metrics_port": 0}
    settings.update(values)
    return TritonConfig(**settings)


# --- models -------------------------------------------------------------------------------------------------

IDENTITY_IN = [Tensor(name="x", shape=(-1,), dtype=np.float32), Tensor(name="s", shape=(-1,), dtype=bytes)]
IDENTITY_OUT = [Tensor(name="y", shape=(-1,), dtype=np.float32), Tensor(name="t", shape=(-1,), dtype=bytes)]


def identity(requests: List[Any]) -> List[Dict[str, np.ndarray]]:
    return [{"y": r["x"], "t": r["s"]} for r in requests]


def bind_identity(triton: Any, name: str = "identity") -> None:
    triton.bind(name, identity, IDENTITY_IN, IDENTITY_OUT, config=ModelConfig(max_batch_size=8))


def bind_sleeper(triton: Any, seconds: float, name: str = "sleeper", **config: Any) -> None:
    """``y = x`` after ``seconds`` per execution (one execution per batch)."""

    def infer(requests: List[Any]) -> List[Dict[str, np.ndarray]]:
        time.sleep(seconds)
        return [{"y": r["x"]} for r in requests]

    triton.bind(
        name,
        infer,
        [Tensor(name="x", shape=(-1,), dtype=np.float32)],
        [Tensor(name="y", shape=(-1,), dtype=np.float32)],
        config=ModelConfig(**{"max_batch_size": 16, **config}),
    )


# --- clients ------------------------------------------------------------------------------------------------


def http_identity(port: int, value: float, model: str = "identity") -> None:
    """One identity request over a new HTTP connection (tritonclient), checked."""
    client = httpclient.InferenceServerClient(f"127.0.0.1:{port}", network_timeout=30)
    try:
        x = np.full((1, 3), value, np.float32)
        s = np.array([[f"v{value}".encode(), b"", b"\x00\xff"]], dtype=object)
        inputs = [httpclient.InferInput("x", x.shape, "FP32"), httpclient.InferInput("s", s.shape, "BYTES")]
        inputs[0].set_data_from_numpy(x)
        inputs[1].set_data_from_numpy(s)
        result = client.infer(model, inputs)
        assert result.as_numpy("y").tolist() == x.tolist()
        assert result.as_numpy("t").tolist() == s.tolist()
    finally:
        client.close()


def grpc_identity(port: int, value: float, model: str = "identity") -> None:
    """One identity request over a new gRPC channel (tritonclient), checked."""
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
    try:
        x = np.full((2, 2), value, np.float32)
        s = np.array([[b"a", f"{value}".encode()], [b"", b"z"]], dtype=object)
        inputs = [grpcclient.InferInput("x", x.shape, "FP32"), grpcclient.InferInput("s", s.shape, "BYTES")]
        inputs[0].set_data_from_numpy(x)
        inputs[1].set_data_from_numpy(s)
        result = client.infer(model, inputs, client_timeout=30)
        assert result.as_numpy("y").tolist() == x.tolist()
        assert result.as_numpy("t").tolist() == s.tolist()
    finally:
        client.close()


def raw_http_infer(connection: http.client.HTTPConnection, model: str, value: float) -> Dict[str, Any]:
    """A JSON inference over an open keep-alive connection; the decoded answer."""
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [value]}]})
    connection.request("POST", f"/v2/models/{model}/infer", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    assert response.status == 200, (response.status, payload)
    decoded: Dict[str, Any] = json.loads(payload)
    return decoded


# --- /proc ----------------------------------------------------------------------------------------------------


def _stat(pid: int) -> Optional[List[str]]:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces: the fields after it are plain
    return text[text.rindex(")") + 2 :].split()


def parent_of(pid: int) -> Optional[int]:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def is_gone(pid: int) -> bool:
    """No such process, or a zombie (it exited; its sockets are closed)."""
    fields = _stat(pid)
    return fields is None or fields[0] in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\x00", b" ").decode(errors="replace")
    except OSError:
        return ""


def descends_from(pid: int, ancestor: int) -> bool:
    """``ancestor`` is ``pid``'s parent, grandparent, ... (workers may be forked by a zygote child)."""
    seen = 0
    parent = parent_of(pid)
    while parent is not None and parent > 1 and seen < 64:
        if parent == ancestor:
            return True
        parent, seen = parent_of(parent), seen + 1
    return parent == ancestor


def worker_processes(root: int) -> List[int]:
    """The live processes of the workers package (workers and their zygote) that descend from ``root``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if WORKER_PACKAGE in _cmdline(pid) and not is_gone(pid) and descends_from(pid, root):
            found.append(pid)
    return sorted(found)


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


def _socket_inodes(pid: int) -> Set[int]:
    inodes = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _tcp_rows() -> Iterable[List[str]]:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            yield line.split()


def accepted_by(server_port: int, pids: Iterable[int]) -> Dict[int, int]:
    """client port -> the pid (of ``pids``) holding the accepted socket of each established connection to
    ``server_port`` (an unlisted owner is reported as -1)."""
    owners = {inode: pid for pid in pids for inode in _socket_inodes(pid)}
    found = {}
    for row in _tcp_rows():
        local, remote, state, inode = row[1], row[2], row[3], int(row[9])
        if state != "01" or int(local.rsplit(":", 1)[1], 16) != server_port:
            continue  # 01 = ESTABLISHED
        found[int(remote.rsplit(":", 1)[1], 16)] = owners.get(inode, -1)
    return found


__all__ = [
    "accepted_by",
    "bind_identity",
    "bind_sleeper",
    "grpc_identity",
    "http_identity",
    "is_gone",
    "parent_of",
    "raw_http_infer",
    "wait_for",
    "descends_from",
    "worker_processes",
    "worker_config",
]
