"""GPU checks, run on a machine with an NVIDIA GPU (they skip elsewhere, CI included).

- The model-repository example's TorchScript CNN and ONNX MLP give the same outputs with ``KIND_GPU`` as with
  ``KIND_CPU`` (the ONNX one where onnxruntime has its CUDA execution provider).
- The metrics endpoint exports Triton's ``nv_gpu_*`` families with ``gpu_uuid`` labels (needs nvidia-ml-py).

    python -m pytest tests/gpu -v
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import shutil
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
import tritonclient.http as httpclient

from pytriton_lite.config import TritonConfig, TritonSecurityConfig

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU here", allow_module_level=True)

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "model_repository"
OPEN = TritonSecurityConfig(restricted_endpoints=[])


@pytest.fixture(scope="module")
def built_repository(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(EXAMPLE / "models", root / "models")
    subprocess.run([sys.executable, str(EXAMPLE / "build_models.py"), "--models", str(root / "models")], check=True)
    return root / "models"


def _with_kind(repository: pathlib.Path, target: pathlib.Path, model: str, kind: str) -> pathlib.Path:
    shutil.copytree(repository / model, target / model)
    config = target / model / "config.pbtxt"
    text = re.sub(r"instance_group \[.*?\]", "", config.read_text(), flags=re.DOTALL)
    config.write_text(text + f"\ninstance_group [ {{ count: 1, kind: {kind} }} ]\n")
    return target


def _infer(triton, model: str, name: str, data: np.ndarray) -> np.ndarray:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}")
    try:
        tensor = httpclient.InferInput(name, list(data.shape), "FP32")
        tensor.set_data_from_numpy(data)
        return client.infer(model, [tensor]).as_numpy(client.get_model_metadata(model)["outputs"][0]["name"])
    finally:
        client.close()


def _config(repository: pathlib.Path) -> TritonConfig:
    return TritonConfig(
        model_repository=repository,
        http_address="127.0.0.1",
        grpc_address="127.0.0.1",
        metrics_address="127.0.0.1",
        http_port=0,
        grpc_port=0,
        metrics_port=0,
    )


@pytest.mark.parametrize(
    "model,input_name,needs",
    [("mnist_cnn", "INPUT__0", "torch"), ("mnist_mlp", "input", "onnxruntime")],
)
def test_kind_gpu_gives_the_cpu_outputs(triton_server, built_repository, tmp_path, model, input_name, needs):
    if importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed")
    if needs == "onnxruntime":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            pytest.skip(f"onnxruntime {onnxruntime.__version__} has no CUDA execution provider")
    data = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    outputs = {}
    for kind in ("KIND_CPU", "KIND_GPU"):
        repository = _with_kind(built_repository, tmp_path / kind, model, kind)
        triton = triton_server(config=_config(repository), security_config=OPEN)
        outputs[kind] = _infer(triton, model, input_name, data)
        triton.stop()
    assert outputs["KIND_GPU"].shape == (4, 10)
    np.testing.assert_allclose(outputs["KIND_GPU"], outputs["KIND_CPU"], rtol=1e-4, atol=1e-5)


def test_gpu_metric_families_with_gpu_uuid_labels(triton_server):
    if importlib.util.find_spec("pynvml") is None:
        pytest.skip("nvidia-ml-py is not installed")
    triton = triton_server(config=TritonConfig(metrics_interval_ms=100), security_config=OPEN)
    torch.ones((1024, 1024, 64), device="cuda")  # some memory in use on GPU 0
    with urllib.request.urlopen(f"http://127.0.0.1:{triton.metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    print(text[text.index("nv_gpu") - 30 :][:2000])
    for family in ("nv_gpu_utilization", "nv_gpu_memory_total_bytes", "nv_gpu_memory_used_bytes", "nv_gpu_power_usage"):
        assert f"# TYPE {family} gauge" in text
        samples = re.findall(rf'^{family}{{gpu_uuid="(GPU-[^"]+)"}} (\S+)$', text, re.MULTILINE)
        assert len(samples) == torch.cuda.device_count(), family
    total = dict(re.findall(r'^nv_gpu_memory_total_bytes{gpu_uuid="([^"]+)"} (\S+)$', text, re.MULTILINE))
    used = dict(re.findall(r'^nv_gpu_memory_used_bytes{gpu_uuid="([^"]+)"} (\S+)$', text, re.MULTILINE))
    for uuid, value in total.items():
        assert float(value) > 1e9 and 0 < float(used[uuid]) < float(value)
