"""FuturesModelClient: concurrent.futures interface; a pool of threads, each owning a ModelClient."""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from pytriton_lite.client._base import DEFAULT_INIT_TIMEOUT_S
from pytriton_lite.client._sync import ModelClient
from pytriton_lite.client.auth import auth_headers
from pytriton_lite.client.exceptions import (
    PyTritonClientClosedError,
    PyTritonClientQueueFullError,
    PyTritonClientValueError,
)
from pytriton_lite.client.utils import TritonUrl
from pytriton_lite.model_config import TritonModelConfig

_LOGGER = logging.getLogger("pytriton_lite.client")

_Task = Tuple[Optional[Future], Any, Optional[str]]
_STOP: _Task = (None, None, None)


class FuturesModelClient:
    """Submit inferences from any thread; results come back as ``concurrent.futures.Future``.

    Args:
        url, model_name, model_version: as for ModelClient.
        max_workers: most threads (and connections); threads start as requests arrive.
        max_queue_size: most requests waiting for a thread.
        non_blocking: True raises ``PyTritonClientQueueFullError`` at once when the queue is full; False
            waits for room (up to ``inference_timeout_s`` when given, else forever).
        init_timeout_s, inference_timeout_s, access_token, api_key: as for ModelClient.
    """

    def __init__(
        self,
        url: str,
        model_name: str,
        model_version: Optional[str] = None,
        *,
        max_workers: int = 128,
        max_queue_size: int = 128,
        non_blocking: bool = False,
        init_timeout_s: Optional[float] = None,
        inference_timeout_s: Optional[float] = None,
        access_token: Optional[str] = None,
        api_key: Optional[str] = None,
    ):
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if max_queue_size is not None and max_queue_size <= 0:
            raise ValueError("max_queue_size must be greater than 0")
        if access_token is not None or api_key is not None:  # ValueError now, not in a worker thread
            auth_headers(access_token, api_key, TritonUrl.from_url(url).scheme)
        self._access_token = access_token
        self._api_key = api_key
        self._url = url
        self._model_name = model_name
        self._model_version = model_version
        self._max_workers = 128 if max_workers is None else max_workers
        self._non_blocking = non_blocking
        self._init_timeout_s = DEFAULT_INIT_TIMEOUT_S if init_timeout_s is None else init_timeout_s
        self._inference_timeout_s = inference_timeout_s
        # The queue itself is unbounded so that close() can always post its stop markers; the semaphore
        # bounds the requests waiting for a thread.
        self._queue: queue.Queue = queue.Queue()
        self._room = threading.Semaphore(max_queue_size or 128)
        self._lock = threading.Lock()
        self._workers: List[threading.Thread] = []
        self._alive_workers = 0
        self._idle_workers = 0
        self._pending = 0  # queued requests no thread has taken yet
        self._closed = False
        self._model_config: Optional[TritonModelConfig] = None

    def __enter__(self) -> FuturesModelClient:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self, wait: bool = True) -> None:
        """Stop accepting requests; queued ones still run. ``wait`` blocks until the threads finished them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._workers)
        for _ in workers:
            self._queue.put(_STOP)  # behind every queued request, so those still run
        if wait:
            for worker in workers:
                worker.join()
        self._fail_leftovers()

    # --- public operations, each returning a Future --------------------------------------------------

    def wait_for_model(self, timeout_s: float) -> Future:
        """Future resolving to None when the model is ready."""
        return self._submit("wait_for_model", timeout_s)

    def model_config(self) -> Future:
        """Future resolving to the model's ``TritonModelConfig``."""
        return self._submit("model_config")

    def infer_sample(
        self,
        *inputs: np.ndarray,
        parameters: Optional[Dict[str, Union[str, int, bool]]] = None,
        headers: Optional[Dict[str, Union[str, int, bool]]] = None,
        **named_inputs: np.ndarray,
    ) -> Future:
        """Future of ``ModelClient.infer_sample``."""
        return self._submit("infer_sample", (inputs, parameters, headers, named_inputs))

    def infer_batch(
        self,
        *inputs: np.ndarray,
        parameters: Optional[Dict[str, Union[str, int, bool]]] = None,
        headers: Optional[Dict[str, Union[str, int, bool]]] = None,
        **named_inputs: np.ndarray,
    ) -> Future:
        """Future of ``ModelClient.infer_batch``."""
        return self._submit("infer_batch", (inputs, parameters, headers, named_inputs))

    # --- queue and workers ---------------------------------------------------------------------------

    def _submit(self, name: str, request: Any = None) -> Future:
        if self._closed:
            raise PyTritonClientClosedError("FutureModelClient is already closed")
        if self._non_blocking:
            has_room = self._room.acquire(blocking=False)
        else:
            has_room = self._room.acquire(timeout=self._inference_timeout_s)
        if not has_room:
            raise PyTritonClientQueueFullError("Queue is full")
        future: Future = Future()
        with self._lock:
            self._pending += 1
            self._extend_pool_locked()
        self._queue.put((future, request, name))
        if self._closed:
            self._fail_leftovers()  # close() raced with this put and its threads may be gone already
        return future

    def _extend_pool_locked(self) -> None:
        """Start one more thread when more requests wait than threads are idle (and the pool has room)."""
        if self._closed or self._pending <= self._idle_workers or len(self._workers) >= self._max_workers:
            return
        thread = threading.Thread(target=self._worker, name=f"FuturesModelClient-{len(self._workers)}", daemon=True)
        self._workers.append(thread)
        self._alive_workers += 1
        self._idle_workers += 1
        thread.start()

    def _fail_leftovers(self) -> None:
        """Once no thread is left, fail the requests still queued instead of leaving their futures pending."""
        with self._lock:
            if self._alive_workers > 0:
                return
            while True:
                try:
                    future, _, _ = self._queue.get_nowait()
                except queue.Empty:
                    return
                if future is None:
                    continue
                self._room.release()
                if future.set_running_or_notify_cancel():
                    future.set_exception(PyTritonClientClosedError("FutureModelClient is already closed"))

    def _create_client(self) -> ModelClient:
        config = self._model_config
        return ModelClient(
            self._url,
            self._model_name,
            self._model_version,
            init_timeout_s=self._init_timeout_s,
            inference_timeout_s=self._inference_timeout_s,
            # Once one thread knows the config, the others skip the readiness wait and config fetch.
            model_config=config,
            ensure_model_is_ready=config is None,
            access_token=self._access_token,
            api_key=self._api_key,
        )

    def _run(self, client: ModelClient, name: str, request: Any) -> Any:
        if name in ("infer_sample", "infer_batch"):
            inputs, parameters, headers, named_inputs = request
            method = client.infer_sample if name == "infer_sample" else client.infer_batch
            return method(*inputs, parameters=parameters, headers=headers, **named_inputs)
        if name == "model_config":
            return client.model_config
        if name == "wait_for_model":
            return client.wait_for_model(request)
        raise PyTritonClientValueError(f"Unknown request name {name}")

    def _worker(self) -> None:
        client: Optional[ModelClient] = None
        try:
            while True:
                future, request, name = self._queue.get()
                if future is None:
                    break
                self._room.release()
                with self._lock:
                    self._pending -= 1
                    self._idle_workers -= 1
                try:
                    if not future.set_running_or_notify_cancel():
                        continue
                    try:
                        if client is None:
                            client = self._create_client()
                        result = self._run(client, name, request)
                        if self._model_config is None and client._model_config is not None:
                            self._model_config = client._model_config
                        future.set_result(result)
                    except Exception as exc:  # noqa: BLE001 - the caller gets it from the future
                        future.set_exception(exc)
                finally:
                    with self._lock:
                        self._idle_workers += 1
        finally:
            if client is not None:
                client.close()
            with self._lock:
                self._alive_workers -= 1
                self._idle_workers -= 1
            self._fail_leftovers()
