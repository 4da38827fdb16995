"""docs/sequences.md runs as written: its script block, and its repository model (the config.pbtxt block and the
model.py fragment) served from a repository and driven by tritonclient."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import numpy as np
import tritonclient.grpc as grpcclient

from pytriton_lite.testing import running_triton
from pytriton_lite.triton import TritonConfig

PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "sequences.md"


def _blocks(language: str):
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), re.DOTALL)


def test_the_bound_example_runs(tmp_path):
    scripts = [code for code in _blocks("python") if not code.lstrip().startswith("# fragment")]
    assert scripts
    for code in scripts:
        script = tmp_path / "block.py"
        script.write_text(code)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 0, f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        assert "{1000: [1, 3, 6, 10], 1001: [2, 6, 12, 20]}" in proc.stdout


def test_the_repository_example_serves_sequences(tmp_path):
    (config,) = _blocks("text")
    (model,) = [code for code in _blocks("python") if code.lstrip().startswith("# fragment")]
    folder = tmp_path / "accumulator"
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text(config)
    (folder / "1" / "model.py").write_text(model)
    with running_triton(TritonConfig(model_repository=tmp_path, allow_metrics=False)) as triton:
        with grpcclient.InferenceServerClient(f"127.0.0.1:{triton.grpc_port}") as client:
            sums = {}
            for count, value in enumerate([5, 6, 7], 1):
                for sequence_id in ("a", 2):
                    data = grpcclient.InferInput("INPUT", [1, 1], "INT32")
                    data.set_data_from_numpy(np.array([[value]], dtype=np.int32))
                    result = client.infer(
                        "accumulator",
                        [data],
                        sequence_id=sequence_id,
                        sequence_start=count == 1,
                        sequence_end=count == 3,
                    )
                    sums.setdefault(sequence_id, []).append(int(result.as_numpy("OUTPUT")[0, 0]))
    assert sums == {"a": [5, 11, 18], 2: [5, 11, 18]}
