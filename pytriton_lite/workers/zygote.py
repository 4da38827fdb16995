"""Front-end workers forked from one process that has already imported them (a zygote).

Importing numpy, grpc, uvicorn and the front ends takes ~0.4 s of CPU per process; N workers started as fresh
interpreters pay it N times, at once, on a machine whose cores the start-up shares. The hub instead starts one
``python -m pytriton_lite.workers.zygote`` that imports everything a worker needs, creates no thread, loop,
channel or server, and forks a worker whenever the hub sends it a SPAWN message with the worker's two socket
ends (``SCM_RIGHTS`` over a ``SOCK_SEQPACKET`` socketpair). It reports each worker's pid, and later its exit
status (the hub cannot wait for a grandchild). It exits when the hub's end closes; its workers exit on their
own when their channels close.

``ForkedProcess`` is the hub's handle on such a worker: ``pid``, ``poll``, ``wait``, ``kill``, as
``subprocess.Popen``'s.
"""

from __future__ import annotations

import gc
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
from typing import Dict, List, Optional, Sequence

_MESSAGE_BYTES = 256


class ForkedProcess:
    """A worker forked by the zygote; its exit status arrives from the zygote."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: Optional[int] = None
        self._exited = threading.Event()

    def poll(self) -> Optional[int]:
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"front-end worker {self.pid}", timeout or 0.0)
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def exited(self, code: int) -> None:
        self.returncode = code
        self._exited.set()


class Zygote:
    """The hub's side: start the zygote, ask it for workers, hear of their exits."""

    def __init__(self, env: Dict[str, str]) -> None:
        self._env = env
        self._sock: Optional[socket.socket] = None
        self._proc: Optional[subprocess.Popen] = None
        self._pids: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._children: Dict[int, ForkedProcess] = {}
        self._exits: Dict[int, int] = {}  # exits reported before the pid reply was read
        self._lock = threading.Lock()
        self._reader: Optional[threading.Thread] = None

    def start(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-m", "pytriton_lite.workers.zygote", str(theirs.fileno())]
        try:
            self._proc = subprocess.Popen(command, pass_fds=(theirs.fileno(),), env=self._env, stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        self._sock = mine
        self._reader = threading.Thread(target=self._read, name="pytriton_lite-zygote", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._sock is not None

    def spawn(self, index: int, fds: Sequence[int], timeout: float = 10.0) -> ForkedProcess:
        """Fork worker ``index`` with ``fds`` (its channel and call sockets); OSError if the zygote is gone."""
        if self._sock is None:
            raise OSError("the front-end worker zygote is not running")
        with self._lock:
            socket.send_fds(self._sock, [f"spawn {index}".encode()], list(fds))
            try:
                pid = self._pids.get(timeout=timeout)
            except queue.Empty:
                raise OSError("the front-end worker zygote did not answer") from None
            child = ForkedProcess(pid)
            self._children[pid] = child
            if pid in self._exits:
                child.exited(self._exits.pop(pid))
        return child

    def _read(self) -> None:
        sock = self._sock
        assert sock is not None
        while True:
            try:
                data = sock.recv(_MESSAGE_BYTES)
            except OSError:
                data = b""
            if not data:
                break
            words = data.decode().split()
            if words[0] == "pid":
                self._pids.put(int(words[1]))
            elif words[0] == "exit":
                pid, code = int(words[1]), int(words[2])
                with_child = self._children.pop(pid, None)
                if with_child is not None:
                    with_child.exited(code)
                else:
                    self._exits[pid] = code
        for child in list(self._children.values()):  # the zygote is gone: it reports no more exits
            if child.returncode is None:
                child.exited(-1)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:  # wakes the reader thread's recv, so the socket really closes and the zygote sees its end
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._proc is not None:
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


# --- the zygote process -----------------------------------------------------------------------------------


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
        try:
            sock.send(f"exit {pid} {code}".encode())
        except OSError:
            return


def serve(fd: int) -> int:
    """The zygote's loop: fork a worker per SPAWN, report pids and exits, end when the hub's end closes."""
    from pytriton_lite.workers import process  # everything a worker imports, imported once, here

    process.preload()
    gc.freeze()  # what was imported stays out of the workers' collections: their pages stay shared
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    while True:
        ready, _, _ = select.select([sock], [], [], 0.2)
        _reap(sock)
        if not ready:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(sock, _MESSAGE_BYTES, 2)
        except OSError:
            return 0
        if not message:
            return 0
        index = int(message.decode().split()[1])
        pid = os.fork()
        if pid == 0:  # the worker
            sock.close()
            code = 1
            try:
                code = process.main([str(index), *(str(f) for f in fds)])
            finally:
                os._exit(code)
        for f in fds:
            os.close(f)
        sock.send(f"pid {pid}".encode())


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return serve(int(args[0]))


if __name__ == "__main__":
    sys.exit(main())
