"""``python -m pytriton_lite``: ``demo`` (serve an example model and answer it) and ``check`` (self-test)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

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


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytriton_lite")
    sub = parser.add_subparsers(dest="command")
    for name in ("demo", "check"):
        cmd = sub.add_parser(name, help="serve an example model and answer it with tritonclient")
        cmd.add_argument("--http-port", type=int, default=0)
        cmd.add_argument("--grpc-port", type=int, default=0)
        cmd.add_argument("--metrics-port", type=int, default=0)
        cmd.add_argument("--serve", action="store_true", help="keep serving after the demo requests")
    args = parser.parse_args(argv)
    if args.command in ("demo", "check"):
        return demo(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
