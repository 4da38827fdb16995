"""``Triton``: binds infer callables and serves them over v2 HTTP/gRPC from this process.

One background thread runs one asyncio loop (uvloop when installed) holding the HTTP, gRPC and metrics
front ends and the batchers; each model instance has its own worker thread. Nothing is spawned or copied,
so start-up to ready takes milliseconds.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import re
import signal
import threading
import time
from typing import Any, Callable, Coroutine, Dict, List, Optional, Sequence, Union

from pytriton_lite._binding import attach_context, named_tensor, refuse_sagemaker
from pytriton_lite._frontend_set import HUNG_EXIT_S, bounded, start_frontends
from pytriton_lite._gc import while_serving, young_threshold
from pytriton_lite.config import (
    DEFAULT_EXIT_TIMEOUT_S,
    DEFAULT_PROTECTED_ENDPOINTS,
    TRITON_ACCESS_HEADER,
    VALID_TRITON_ENDPOINTS,
    DefaultTritonLifecyclePolicy,
    TritonConfig,
    TritonLifecyclePolicy,
    TritonSecurityConfig,
    VertextAILifecyclePolicy,
    frontend_worker_count,
)
from pytriton_lite.core.cache import parse_cache_config
from pytriton_lite.core.dataplane import InProcessDataPlane
from pytriton_lite.core.log_settings import LogSettings, own_handler
from pytriton_lite.core.model import Model
from pytriton_lite.core.summaries import parse_metrics_config
from pytriton_lite.core.trace import TraceSettings
from pytriton_lite.core.warmup import run_warmup
from pytriton_lite.exceptions import (
    PyTritonError,
    PyTritonInvalidOperationError,
    PyTritonValidationError,
)
from pytriton_lite.model_config import ModelConfig, Tensor, validate_model_config
from pytriton_lite.proxy.remote import RemoteTriton  # PyTriton's import path; refused with a typed error
from pytriton_lite.types import ModelState

LOGGER = logging.getLogger("pytriton_lite.triton")

_MODEL_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
_START_TIMEOUT_S = 30.0
_DRAIN_SLICE_S = 0.25  # how soon a drain notices a second signal
_REPOSITORY_LOAD_TIMEOUT_S = 3600.0  # loading a repository imports frameworks and runs initialize()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def _local(address: Optional[str]) -> str:
    return "127.0.0.1" if address in (None, "", "0.0.0.0", "::") else str(address)


_WORKER_GRACE_S = 5.0  # what front-end workers get to finish their requests at stop


class Triton:
    """PyTriton's ``Triton``: ``bind`` models, then ``run()`` (background) or ``serve()`` (blocking)."""

    def __init__(
        self,
        *,
        config: Optional[TritonConfig] = None,
        workspace: Any = None,
        triton_lifecycle_policy: Optional[TritonLifecyclePolicy] = None,
        security_config: Optional[TritonSecurityConfig] = None,
    ) -> None:
        env = TritonConfig.from_env()
        self._config = config.merged_over(env) if config is not None else env
        refuse_sagemaker(self._config)
        if triton_lifecycle_policy is None:
            triton_lifecycle_policy = (
                VertextAILifecyclePolicy if self._config.allow_vertex_ai else DefaultTritonLifecyclePolicy
            )
        self._policy = triton_lifecycle_policy
        self._cache_bytes = parse_cache_config(self._config.cache_config)
        self._metrics_options = parse_metrics_config(self._config.metrics_config)  # a bad entry fails here
        self._security = security_config if security_config is not None else TritonSecurityConfig()
        self._api_keys = self._apply_security(self._security)
        self._workspace = workspace  # accepted for compatibility; nothing is written to disk
        self._lock = threading.RLock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._dataplane: Optional[InProcessDataPlane] = None
        self._repository: Any = None  # repository.control.ModelRepository when config.model_repository is set
        self._frontends: List[Any] = []
        self._workers: Any = None  # workers.hub.WorkerHub with frontend_workers > 0
        self._status_app: Any = None  # frontends.status.StatusPage, built on the first /status request
        self._started_at = time.time()
        self._pending: List[Model] = []
        self._started = False
        self._stopped = False
        self._stop_requested = False  # stop() came before any start: a racing serve() returns
        self._hurried = False  # a second signal came: stop waiting for running requests
        self._connected = False
        self._stop_event = threading.Event()
        self._log_handler: Optional[logging.Handler] = None
        self.http_port: Optional[int] = None
        self.grpc_port: Optional[int] = None
        self.metrics_port: Optional[int] = None
        self.vertex_ai_port: Optional[int] = None  # with allow_vertex_ai
        atexit.register(self._atexit)

    # --- public API ------------------------------------------------------------------------------------

    @property
    def config(self) -> TritonConfig:
        return self._config

    @property
    def http_url(self) -> str:
        return f"http://{_local(self._config.http_address)}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://{_local(self._config.grpc_address)}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{_local(self._config.metrics_address or self._config.http_address)}:{self.metrics_port}"

    def get_access_token(self) -> Optional[str]:
        return self._security.access_token

    def _apply_security(self, security: TritonSecurityConfig) -> Any:
        """Turn ``security`` into Triton's restricted-API settings for both front ends; return its API keys.

        As PyTriton 0.7: with no ``security_config`` the five default groups need a generated token. Rules the
        ``TritonConfig`` gives itself (``http_restricted_api``/``grpc_restricted_protocol``) come after the token's,
        so they win for a group both name.
        """
        security.__post_init__()  # again: fields set after construction must not leave a group open or unchecked
        endpoints = security.restricted_endpoints
        if endpoints and security.access_token:
            spec = f"{','.join(endpoints)}:{TRITON_ACCESS_HEADER}={security.access_token}"
            values = self._config.to_dict()
            for key in ("http_restricted_api", "grpc_restricted_protocol"):
                values[key] = spec if not values.get(key) else f"{spec};{values[key]}"
            self._config = TritonConfig(**values)
        return security.read_api_keys()

    def bind(
        self,
        model_name: str,
        infer_func: Union[Callable[..., Any], Sequence[Callable[..., Any]]],
        inputs: Sequence[Tensor],
        outputs: Sequence[Tensor],
        model_version: int = 1,
        config: Optional[ModelConfig] = None,
        strict: bool = False,
        trace_config: Optional[List[str]] = None,
    ) -> None:
        """Bind ``infer_func`` (or a list of them = that many instances) as ``model_name``."""
        if not isinstance(model_name, str) or not model_name or not _MODEL_NAME.match(model_name):
            raise PyTritonValidationError(
                f"Invalid model name {model_name!r}: use only letters, digits, '.', '_' and '-' (non-empty)."
            )
        if callable(infer_func):
            funcs = [infer_func]
        elif isinstance(infer_func, (list, tuple)) and infer_func and all(callable(f) for f in infer_func):
            funcs = list(infer_func)
        else:
            raise PyTritonValidationError(
                f"infer_func for model '{model_name}' must be a callable or a non-empty sequence of callables"
            )
        config = config if config is not None else ModelConfig()
        validate_model_config(config)
        if config.response_cache and not self._cache_bytes:
            raise PyTritonValidationError(
                f"Model '{model_name}' enables response_cache but the server has no cache: "
                "set TritonConfig(cache_config=['local,size=<bytes>'])"
            )
        named_inputs = [named_tensor(t, f"INPUT_{i}") for i, t in enumerate(inputs, 1)]
        named_outputs = [named_tensor(t, f"OUTPUT_{i}") for i, t in enumerate(outputs, 1)]
        for tensor in named_outputs:
            if tensor.optional:
                raise PyTritonValidationError("Output tensors cannot be optional.")
        for kind, tensors in (("input", named_inputs), ("output", named_outputs)):
            names = [t.name for t in tensors]
            if len(set(names)) != len(names):
                raise PyTritonValidationError(f"Model '{model_name}' has duplicate {kind} names: {names}")
        model = Model(model_name, int(model_version), funcs, named_inputs, named_outputs, config, strict)
        attach_context(model)
        with self._lock:
            existing = [(m.name.lower(), m.version) for m in self._pending]
            if self._dataplane is not None and self._started:
                existing += [(m.name.lower(), m.version) for m in self._dataplane.models()]
            if (model_name.lower(), int(model_version)) in existing:
                raise PyTritonInvalidOperationError("Cannot add model with the same name twice.")
            if self._started and not self._stopped:
                self._load(model)
            else:
                self._pending.append(model)

    def run(self) -> None:
        """Start serving in the background; returns once the server and all bound models are ready."""
        self.connect()

    def connect(self) -> None:
        """Start (if needed) and make every bound model live. Idempotent; after ``stop()`` it starts again."""
        self._connect(serving=False)

    def _connect(self, serving: bool) -> bool:
        with self._lock:
            if serving and self._stop_requested:  # stop() won the race with serve(): nothing to serve
                return False
            if self._started and self._stopped:
                raise PyTritonInvalidOperationError("Triton is stopping; start it again once stop() has returned.")
            if not self._started:
                young_threshold()  # a bad PYTRITON_LITE_GC_THRESHOLD fails before anything starts (workers read it)
                self._restart_state()
                self._start()
            pending, self._pending = self._pending, []
            for model in pending:
                self._load(model)
            self._connected = True
            return True

    def _restart_state(self) -> None:
        """After a ``stop()`` (the notebook pattern: run, stop, bind again, run again) start from a clean slate."""
        self._stop_requested = False
        self._stop_event.clear()
        if not self._stopped:
            return
        self._stopped = False
        self._dataplane, self._repository, self._frontends, self._workers = None, None, [], None
        self._status_app = None
        self.http_port = self.grpc_port = self.metrics_port = self.vertex_ai_port = None
        atexit.register(self._atexit)

    def serve(self, monitoring_period_s: float = 10.0) -> None:
        """Serve until ``stop()`` from another thread, SIGINT or SIGTERM (handled when on the main thread).

        While it serves, Python's young-generation GC threshold is at least 10,000 allocations
        (``PYTRITON_LITE_GC_THRESHOLD`` sets another, 0 leaves it); the thresholds are restored on return.
        """
        with while_serving():  # a bad PYTRITON_LITE_GC_THRESHOLD fails here, before anything starts
            self._serve(monitoring_period_s)

    def _serve(self, monitoring_period_s: float) -> None:
        if not self._connect(serving=True):
            return
        previous = {}
        self._hurried = False
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, self._on_signal)
        LOGGER.info("(Press CTRL+C or use the command `kill -SIGINT %d` to send a SIGINT signal and quit)", os.getpid())
        try:
            while not self._stop_event.wait(monitoring_period_s):
                if not self.is_alive():
                    break
        finally:
            try:
                self.stop()  # our handlers stay during the drain: a second signal cuts it short (_on_signal)
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)

    def stop(self) -> bool:
        """Drain (refuse new, finish queued and running within exit_timeout_secs), then close. Idempotent."""
        with self._lock:
            if not self._started or self._stopped:
                if not self._started and not self._stopped:
                    self._stop_requested = True
                self._stop_event.set()
                return False
            self._stopped = True
            self._pending = []  # as PyTriton: the models go with the server; bind them again before run()
        self._stop_event.set()
        timeout = float(
            self._config.exit_timeout_secs if self._config.exit_timeout_secs is not None else DEFAULT_EXIT_TIMEOUT_S
        )
        try:
            self._call(self._shutdown(timeout), timeout + 10.0)
        except Exception:
            LOGGER.exception("Error while stopping the server")
        finally:
            self._stop_loop()
            if self._dataplane is not None:
                self._dataplane.join_instances(1.0)
            if self._log_handler is not None:
                logging.getLogger("pytriton_lite").removeHandler(self._log_handler)
                self._log_handler.close()
            atexit.unregister(self._atexit)
            with self._lock:
                self._started, self._connected = False, False
        return True

    def is_alive(self) -> bool:
        """True while serving and every model instance thread is alive."""
        if not self._started or self._stopped or self._dataplane is None:
            return False
        return self._dataplane.alive and self._dataplane.instances_alive()

    def is_connected(self) -> bool:
        return self._connected and not self._stopped

    def __enter__(self) -> Triton:
        if self._policy.launch_triton_on_startup:
            self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- internals -------------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self._stop_event.is_set():
            LOGGER.info("Received signal %d, stopping", signum)
            self._stop_event.set()
            return
        LOGGER.warning("Received signal %d again while stopping: not waiting for running requests any more", signum)
        self._hurried = True  # read by _drain between slices

    def _atexit(self) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _on_loop(self, fn: Callable[[InProcessDataPlane], Any], timeout: float = 10.0) -> Any:
        """Run ``fn(dataplane)`` on the serving loop and return its result (for ``pytriton_lite.testing``)."""
        dataplane = self._dataplane
        if dataplane is None or self._loop is None or not self._loop.is_running():
            raise PyTritonInvalidOperationError("Triton is not running")

        async def call() -> Any:
            return fn(dataplane)

        return self._call(call(), timeout)

    def _configure_logging(self) -> None:
        level = int(self._config.log_verbose or 0)
        if self._config.log_file:
            handler = logging.FileHandler(str(self._config.log_file))
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root = logging.getLogger("pytriton_lite")
            root.addHandler(handler)
            if level > 0:
                root.setLevel(logging.DEBUG)
            elif root.level == logging.NOTSET or root.level > logging.INFO:
                root.setLevel(logging.INFO)
            self._log_handler = handler
            own_handler(handler)  # log_format (the logging extension) may switch its layout
        if level > 0:
            LOGGER.warning(
                "Triton Inference Server is running with enabled verbose logs (log_verbose_level=%d). "
                "It may affect inference performance.",
                level,
            )

    def _start(self) -> None:
        trace = TraceSettings.from_config(self._config.trace_config)  # a bad --trace-config fails first
        self._configure_logging()
        started = time.monotonic()
        self._started_at = time.time()  # the status page's uptime
        self._loop = _new_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._loop_main, args=(ready,), name="pytriton_lite-serving", daemon=True
        )
        self._thread.start()
        ready.wait()
        self._dataplane = InProcessDataPlane(
            self._loop, server_id=self._config.id or "triton", cache_bytes=self._cache_bytes
        )
        self._dataplane.on_unrecoverable = self._on_unrecoverable
        self._dataplane.strict_readiness = self._config.strict_readiness is not False
        self._dataplane.trace = trace
        log_file, verbose = str(self._config.log_file or ""), int(self._config.log_verbose or 0)
        self._dataplane.log = LogSettings(log_file=log_file, log_verbose_level=verbose)
        if self._metrics_options.summary_latencies:
            self._dataplane.summary_quantiles = self._metrics_options.summary_quantiles
        try:
            if self._config.model_repository is not None:
                self._start_repository()  # before the front ends: tritonserver opens its ports after loading
            self._call(self._start_frontends(), _START_TIMEOUT_S)
        except BaseException:
            self._abort_start()
            raise
        self._started = True
        LOGGER.info(
            "pytriton_lite ready in %.3f s (http=%s grpc=%s metrics=%s)",
            time.monotonic() - started,
            self.http_port,
            self.grpc_port,
            self.metrics_port,
        )

    def _start_repository(self) -> None:
        """Serve ``config.model_repository`` (explicit mode with every model loaded unless the config says
        otherwise); with ``exit_on_error`` (the default) a model that fails to load fails the start."""
        from pytriton_lite.repository.control import DEFAULT_LOAD_THREADS, DEFAULT_POLL_SECS, ModelRepository

        cfg, dataplane = self._config, self._dataplane
        assert dataplane is not None
        mode = cfg.model_control_mode or "explicit"
        load = cfg.load_model if cfg.load_model is not None else (["*"] if mode == "explicit" else [])
        repository = ModelRepository(
            cfg.model_repository,
            dataplane,
            mode=mode,
            load_models=load,
            poll_secs=cfg.repository_poll_secs if cfg.repository_poll_secs is not None else DEFAULT_POLL_SECS,
            load_threads=cfg.model_load_thread_count or DEFAULT_LOAD_THREADS,
        )
        self._repository = repository
        dataplane.control = repository
        failures = self._call(repository.start(), _REPOSITORY_LOAD_TIMEOUT_S)
        if failures and cfg.exit_on_error is not False:
            details = "; ".join(f"{reason}" for reason in failures.values())
            raise PyTritonError(f"failed to load all models: {details}")

    def _abort_start(self) -> None:
        """Undo a start that failed: stop the repository's models, the loop and its thread."""
        repository, dataplane = self._repository, self._dataplane

        async def unload() -> None:
            if dataplane is not None:
                dataplane.stop_models()
            if repository is not None:
                await repository.close(timeout=1.0)

        try:
            if self._loop is not None and self._loop.is_running():
                self._call(unload(), _START_TIMEOUT_S)
        except Exception:
            LOGGER.exception("Error while stopping the model repository")
        finally:
            self._stop_loop()
            if dataplane is not None:
                dataplane.join_instances(1.0)
            self._stopped = True
            atexit.unregister(self._atexit)

    def _loop_main(self, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(ready.set)
        try:
            self._loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            finally:
                self._loop.close()

    def _stop_loop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10.0)

    async def _start_frontends(self) -> None:
        assert self._dataplane is not None
        status = self._status_page if self._config.allow_status_page is not False else None
        workers = frontend_worker_count(self._config)
        started = await start_frontends(self._dataplane, self._config, self._api_keys, status, in_workers=workers > 0)
        for kind, frontend in started:
            setattr(self, f"{kind}_port", frontend.port)
        self._frontends = [frontend for _, frontend in started]
        if workers > 0:
            from pytriton_lite.workers.hub import WorkerHub

            hub = WorkerHub(
                self._dataplane,
                self._config,
                workers,
                api_keys=self._api_keys,
                status_info=self._status_info if status is not None else None,
                http=self._config.allow_http is not False,
                grpc=self._config.allow_grpc is not False,
            )
            try:
                await hub.start()
            except BaseException:
                await bounded([f.stop() for f in self._frontends], HUNG_EXIT_S, "stopping the front ends")
                raise
            self._workers = hub
            self.http_port, self.grpc_port = hub.http_port, hub.grpc_port

    def _status_page(self) -> Any:
        """The /status app, built on its first request (starlette is imported only then)."""
        if self._status_app is None:
            from pytriton_lite.frontends.status import StatusPage

            assert self._dataplane is not None
            self._status_app = StatusPage(self._dataplane, self._status_info)
        return self._status_app

    def _status_info(self) -> Dict[str, Any]:
        from pytriton_lite import __version__

        cfg = self._config
        auth = bool(cfg.http_restricted_api) or self._api_keys is not None
        return {
            "version": __version__,
            "http_port": self.http_port,
            "grpc_port": self.grpc_port,
            "metrics_port": self.metrics_port,
            "auth": auth,
            "started_at": self._started_at,
        }

    async def _shutdown(self, timeout: float) -> None:
        assert self._dataplane is not None
        if self._repository is not None:
            self._repository.stop_polling()
        if self._workers is not None:  # a worker lost from now on (a group-wide SIGTERM) is not started again
            self._workers.stopping = True
        drained = await self._drain(timeout)
        if not drained:
            LOGGER.warning("Requests still running after exit_timeout_secs=%s; closing anyway", timeout)
        self._dataplane.alive = False
        # after a failed drain the requests left are hung: the front ends get a short bound, not their grace
        stops = [f.stop() for f in self._frontends]
        if self._workers is not None:  # workers finish what they serve, then exit
            stops.append(self._workers.stop(_WORKER_GRACE_S if drained else HUNG_EXIT_S))
        await bounded(stops, None if drained else HUNG_EXIT_S + 1.0, "stopping the front ends")
        self._dataplane.stop_models()
        self._dataplane.trace.close()  # traces still buffered go to the trace file
        self._dataplane.log.release()
        if self._repository is not None:  # finalize the repository's models
            await bounded([self._repository.close(timeout)], timeout if drained else HUNG_EXIT_S, "finalizing")

    async def _drain(self, timeout: float) -> bool:
        """The dataplane's drain in short slices, so that a second SIGINT/SIGTERM (``_on_signal``) ends it."""
        assert self._dataplane is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._hurried:
            remaining = deadline - loop.time()
            if await self._dataplane.drain(max(_DRAIN_SLICE_S / 4, min(_DRAIN_SLICE_S, remaining))):
                return True
            if remaining <= _DRAIN_SLICE_S:
                return False
        return False

    def _load(self, model: Model) -> None:
        """Register ``model`` (LOADING), warm it up on its own instances, then make it READY."""
        assert self._dataplane is not None
        dataplane = self._dataplane

        async def add() -> Any:
            return dataplane.add_model(model, ready=False)

        entry = self._call(add(), _START_TIMEOUT_S)
        if model.config.model_warmup:
            calls = run_warmup(model, entry.batcher.instances)
            LOGGER.info("Model '%s' warmed up with %d calls", model.name, calls)

        async def ready() -> None:
            dataplane.set_state(model.name, model.version, ModelState.READY)
            if self._workers is not None:  # every front-end worker serves it once bind/run returns
                await self._workers.sync()

        self._call(ready(), _START_TIMEOUT_S)
        base = f"/v2/models/{model.name}"
        LOGGER.info(
            "Infer function available as model: `%s`; Status: `GET %s/ready/`; Model config: `GET %s/config/`; "
            "Inference: `POST %s/infer/`",
            base,
            base,
            base,
            base,
        )

    def _on_unrecoverable(self, exc: BaseException) -> None:
        LOGGER.error("Unrecoverable error in an infer function, stopping the server: %s", exc)
        if self._dataplane is not None:
            self._dataplane.accepting = False
        threading.Thread(target=self.stop, name="pytriton_lite-stop", daemon=True).start()


# PyTriton's pytriton.triton re-exports its config classes; so does this module
__all__ = ["Triton", "TritonConfig", "TritonLifecyclePolicy", "TritonSecurityConfig", "TRITON_ACCESS_HEADER"]
__all__ += ["DefaultTritonLifecyclePolicy", "VertextAILifecyclePolicy"]
__all__ += ["VALID_TRITON_ENDPOINTS", "DEFAULT_PROTECTED_ENDPOINTS"]
__all__ += ["RemoteTriton"]
