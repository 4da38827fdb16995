"""pytriton_lite's pytest plugin on this repository: ``triton_server(model_repository=...)`` starts a loopback
server with every model of the folder loaded (run build_models.py first), stopped when the test ends.

Run: python -m pytest test_with_plugin.py
"""

import pathlib

import numpy as np
import pytest
import tritonclient.http as httpclient

MODELS = pathlib.Path(__file__).resolve().parent / "models"

if not (MODELS / "mnist_mlp" / "1" / "model.onnx").is_file():
    pytest.skip("run build_models.py first", allow_module_level=True)


def test_text_generation(triton_server):
    triton = triton_server(model_repository=MODELS)
    client = httpclient.InferenceServerClient(triton.http_url[len("http://") :])
    prompt = httpclient.InferInput("prompt", [1, 1], "BYTES")
    prompt.set_data_from_numpy(np.array([[b"once upon"]], dtype=np.object_))
    result = client.infer("text_generation", [prompt])
    assert result.as_numpy("generated_text")[0, 0] == b"once upon a time there was"
    client.close()


def test_ensemble_equals_its_steps(triton_server):
    triton = triton_server(model_repository=MODELS)
    client = httpclient.InferenceServerClient(triton.http_url[len("http://") :])
    image = np.random.default_rng(0).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    raw = httpclient.InferInput("raw_image", [2, 28, 28], "UINT8")
    raw.set_data_from_numpy(image)
    pixels = httpclient.InferInput("input", [2, 1, 28, 28], "FP32")
    pixels.set_data_from_numpy((image.astype(np.float32) / 255.0)[:, np.newaxis])
    ensemble = client.infer("mnist_ensemble", [raw]).as_numpy("logits")
    mlp = client.infer("mnist_mlp", [pixels]).as_numpy("logits")
    np.testing.assert_allclose(ensemble, mlp, rtol=1e-5, atol=1e-6)
    client.close()
