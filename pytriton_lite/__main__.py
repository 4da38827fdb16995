"""``python -m pytriton_lite`` (also the ``pytriton-lite`` console script): ``serve`` (a Triton model repository,
with tritonserver's flag names), ``demo`` (serve an example model and answer it) and ``check`` (self-test).

``serve`` logs each model's load (name, version, backend, instances, time), a model table and a ready line, as
tritonserver does; a model that fails to load under ``--exit-on-error=true`` (the default) ends it with exit
status 1 and tritonserver's ``error: creating server: Internal - failed to load all models``. docs/cli.md.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np


def _bind_add_sub(triton: object) -> None:
    from pytriton_lite.decorators import batch
    from pytriton_lite.model_config import ModelConfig, Tensor

    @batch
    def add_sub(INPUT_1: np.ndarray, INPUT_2: np.ndarray) -> dict:
        return {"add": INPUT_1 + INPUT_2, "sub": INPUT_1 - INPUT_2}

    triton.bind(  # type: ignore[attr-defined]
        model_name="AddSub",
        infer_func=add_sub,
        inputs=[Tensor(dtype=np.float32, shape=(-1,)), Tensor(dtype=np.float32, shape=(-1,))],
        outputs=[Tensor(name="add", dtype=np.float32, shape=(-1,)), Tensor(name="sub", dtype=np.float32, shape=(-1,))],
        config=ModelConfig(max_batch_size=128),
        strict=True,
    )


def demo(args: argparse.Namespace) -> int:
    """Start a server with AddSub, query it with tritonclient over HTTP and gRPC, print, stop."""
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    from pytriton_lite.triton import Triton, TritonConfig

    t0 = time.perf_counter()
    config = TritonConfig(
        http_address="127.0.0.1",
        grpc_address="127.0.0.1",
        metrics_address="127.0.0.1",
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
    )
    with Triton(config=config) as triton:
        _bind_add_sub(triton)
        ready = time.perf_counter() - t0
        print(
            f"pytriton_lite demo: AddSub served at {triton.http_url} and {triton.grpc_url} "
            f"(ready in {ready * 1000:.0f} ms)"
        )
        a = np.arange(8, dtype=np.float32).reshape(2, 4)
        b = np.ones((2, 4), dtype=np.float32)
        for label, module, url, output, expected in (
            ("HTTP", httpclient, triton.http_url[len("http://") :], "add", a + b),
            ("gRPC", grpcclient, triton.grpc_url[len("grpc://") :], "sub", a - b),
        ):
            client = module.InferenceServerClient(url)
            inputs = [module.InferInput("INPUT_1", a.shape, "FP32"), module.InferInput("INPUT_2", b.shape, "FP32")]
            inputs[0].set_data_from_numpy(a)
            inputs[1].set_data_from_numpy(b)
            result = client.infer("AddSub", inputs).as_numpy(output)
            print(f"{label:5} {output} =", result.tolist())
            assert np.array_equal(result, expected)
            client.close()

        if args.serve:
            print("Serving until CTRL+C ...")
            triton.serve()
    print("pytriton_lite demo: OK")
    return 0


def _flag_bool(value: str) -> bool:
    from pytriton_lite.config import parse_bool
    from pytriton_lite.exceptions import PyTritonValidationError

    try:
        return parse_bool(value)
    except PyTritonValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_serve(sub: Any) -> None:
    cmd = sub.add_parser("serve", help="serve a Triton model repository (tritonserver's flags)")
    cmd.add_argument("--model-repository", "--model-store", action="append", required=True, metavar="DIR")
    cmd.add_argument("--model-control-mode", choices=("none", "explicit", "poll"), default="none")
    cmd.add_argument("--load-model", action="append", default=None, metavar="NAME")
    cmd.add_argument("--repository-poll-secs", type=int, default=15, metavar="N")
    cmd.add_argument("--model-load-thread-count", type=int, default=4, metavar="N")
    for flag in ("--exit-on-error", "--strict-readiness", "--allow-http", "--allow-grpc", "--allow-metrics"):
        cmd.add_argument(flag, type=_flag_bool, nargs="?", const=True, default=True, metavar="true|false")
    for kind, port in (("http", 8000), ("grpc", 8001), ("metrics", 8002)):
        cmd.add_argument(f"--{kind}-port", type=int, default=port)
        cmd.add_argument(f"--{kind}-address", default="0.0.0.0")
    cmd.add_argument("--log-verbose", type=int, default=0, metavar="N")
    cmd.add_argument("--trace-config", action="append", default=None, metavar="[MODE,]SETTING=VALUE")
    cmd.add_argument("--exit-timeout-secs", type=int, default=30, metavar="N")
    cmd.add_argument(
        "--frontend-workers",
        type=int,
        default=None,
        metavar="N",
        help="parse and encode HTTP and gRPC in N worker processes (0: in the serving process); docs/scaling.md",
    )
    cmd.add_argument("--http-max-input-size", type=int, default=None, metavar="BYTES", help="default 64 MiB")
    cmd.add_argument("--metrics-config", action="append", default=None, metavar="KEY=VALUE")
    cmd.add_argument("--metrics-interval-ms", type=int, default=None, metavar="MS")
    for flag in ("--allow-cpu-metrics", "--allow-gpu-metrics"):
        cmd.add_argument(flag, type=_flag_bool, nargs="?", const=True, default=True, metavar="true|false")
    cmd.add_argument("--id", default="triton", help="the server's name in GET /v2")
    # security (docs/security.md): open by default, as tritonserver
    cmd.add_argument("--http-restricted-api", action="append", default=None, metavar="<apis>:<header>=<value>")
    restricted = ("--grpc-restricted-protocol", "--grpc-restricted-api")  # tritonserver's name, and its HTTP twin's
    cmd.add_argument(
        *restricted, dest="grpc_restricted_protocol", action="append", default=None, metavar="<apis>:<header>=<value>"
    )
    cmd.add_argument("--api-keys-env", metavar="VAR", help="require API keys, read from this environment variable")
    cmd.add_argument("--api-keys-file", metavar="FILE", help="require API keys, read from this file (one per line)")


def _model_table(rows: List[Dict[str, str]]) -> str:
    header = ("Model", "Version", "Status")
    lines = [
        (r["name"], r.get("version", ""), r.get("state", "") + (f": {r['reason']}" if r.get("reason") else ""))
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(3)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    body = [rule, "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |", rule]
    body += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    return "\n".join([*body, rule])


def serve(args: argparse.Namespace) -> int:
    """Serve ``--model-repository`` until SIGINT/SIGTERM; 1 when a model fails under --exit-on-error."""
    import logging

    from pytriton_lite.config import TritonSecurityConfig
    from pytriton_lite.exceptions import PyTritonError
    from pytriton_lite.triton import Triton, TritonConfig

    logging.basicConfig(
        level=logging.DEBUG if args.log_verbose > 0 else logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s] %(message)s",
        stream=sys.stderr,
    )
    from pytriton_lite.core.log_settings import own_handler

    for handler in logging.getLogger().handlers:
        own_handler(handler)  # the logging extension's log_format may switch the console's layout
    repositories = [pathlib.Path(path) for path in args.model_repository]
    config = TritonConfig(
        model_repository=repositories[0] if len(repositories) == 1 else repositories,
        model_control_mode=args.model_control_mode,
        load_model=args.load_model or [],
        repository_poll_secs=args.repository_poll_secs,
        model_load_thread_count=args.model_load_thread_count,
        exit_on_error=args.exit_on_error,
        strict_readiness=args.strict_readiness,
        allow_http=args.allow_http,
        allow_grpc=args.allow_grpc,
        allow_metrics=args.allow_metrics,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        http_address=args.http_address,
        grpc_address=args.grpc_address,
        metrics_address=args.metrics_address,
        log_verbose=args.log_verbose,
        trace_config=args.trace_config,
        http_max_input_size=args.http_max_input_size,
        metrics_config=args.metrics_config,
        metrics_interval_ms=args.metrics_interval_ms,
        allow_cpu_metrics=args.allow_cpu_metrics,
        allow_gpu_metrics=args.allow_gpu_metrics,
        exit_timeout_secs=args.exit_timeout_secs,
        frontend_workers=args.frontend_workers,
        id=args.id,
        http_restricted_api=";".join(args.http_restricted_api) if args.http_restricted_api else None,
        grpc_restricted_protocol=";".join(args.grpc_restricted_protocol) if args.grpc_restricted_protocol else None,
    )
    try:
        # tritonserver restricts no API unless told to (PyTriton's generated token is for Triton() in code)
        security = TritonSecurityConfig(
            restricted_endpoints=[], api_keys_env=args.api_keys_env, api_keys_file=args.api_keys_file
        )
        triton = Triton(config=config, security_config=security)
        triton.run()
    except PyTritonError as exc:  # tritonserver's last words, then exit status 1
        message = str(exc)
        if message.startswith("failed to load all models"):
            logging.getLogger("pytriton_lite.triton").error("%s", message)
            message = "failed to load all models"
        print(f"error: creating server: Internal - {message}", file=sys.stderr)
        return 1
    rows = [row.as_dict() for row in triton._on_loop(lambda dataplane: dataplane.repository_index())]
    print(_model_table(rows), file=sys.stderr)
    for label, kind, port in (
        ("GRPCInferenceService", "grpc", triton.grpc_port),
        ("HTTPService", "http", triton.http_port),
        ("Metrics Service", "metrics", triton.metrics_port),
    ):
        if port is not None:
            print(f"Started {label} at {getattr(args, kind + '_address')}:{port}", file=sys.stderr, flush=True)
    print(_auth_line(args, security), file=sys.stderr, flush=True)
    triton.serve()
    return 0


def _auth_line(args: argparse.Namespace, security: Any) -> str:
    """Who may call what, in one line printed beside the addresses (group names only, never a secret)."""
    parts = []
    keys = security.read_api_keys()
    if keys is not None:
        parts.append(f"API keys required on {','.join(sorted(keys.groups))}")
    for kind, specs in (("HTTP", args.http_restricted_api), ("gRPC", args.grpc_restricted_protocol)):
        rules = [rule for spec in specs or () for rule in spec.split(";") if rule.strip()]
        if rules:
            parts.append(f"{kind} restricted API: {','.join(rule.partition(':')[0] for rule in rules)}")
    if parts:
        return "Auth: on; " + "; ".join(parts)
    wide = any(
        getattr(args, f"allow_{k}") and getattr(args, f"{k}_address") == "0.0.0.0" for k in ("http", "grpc", "metrics")
    )
    return "Auth: off, every endpoint is open" + (
        " to every interface (--*-address 127.0.0.1: this host only)" if wide else ""
    )


def parser() -> argparse.ArgumentParser:
    """The command line: ``serve``, ``demo``, ``check``."""
    parser = argparse.ArgumentParser(prog="python -m pytriton_lite")
    sub = parser.add_subparsers(dest="command")
    _add_serve(sub)
    for name in ("demo", "check"):
        cmd = sub.add_parser(name, help="serve an example model and answer it with tritonclient")
        cmd.add_argument("--http-port", type=int, default=0)
        cmd.add_argument("--grpc-port", type=int, default=0)
        cmd.add_argument("--metrics-port", type=int, default=0)
        cmd.add_argument("--serve", action="store_true", help="keep serving after the demo requests")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    command_line = parser()
    args = command_line.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command in ("demo", "check"):
        return demo(args)
    command_line.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
