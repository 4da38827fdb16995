"""Calls every model of the repository with tritonclient, over HTTP and over gRPC, and checks the answers.

Usage: python client.py [--http-url localhost:8000] [--grpc-url localhost:8001]
"""

import argparse

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient


def sample_image() -> np.ndarray:
    """The README's image: a bright vertical bar (a 1) on black, [28, 28] UINT8."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:24, 12:16] = 255
    return image


def infer(client, protocol, model, inputs, output):
    """One request: ``inputs`` maps input names to arrays (batch dim included); returns ``output`` as numpy."""
    infer_inputs = []
    for name, array in inputs.items():
        datatype = "BYTES" if array.dtype == np.object_ else {"float32": "FP32", "uint8": "UINT8"}[str(array.dtype)]
        infer_input = protocol.InferInput(name, list(array.shape), datatype)
        infer_input.set_data_from_numpy(array)
        infer_inputs.append(infer_input)
    outputs = [protocol.InferRequestedOutput(output)]
    return client.infer(model, infer_inputs, outputs=outputs).as_numpy(output)


def check_all(client, protocol, name):
    for model in ("mnist_mlp", "mnist_cnn", "text_generation", "preprocess", "mnist_ensemble"):
        assert client.is_model_ready(model), f"{model} is not ready"

    generated = infer(
        client,
        protocol,
        "text_generation",
        {"prompt": np.array([[b"once upon"], [b"a"]], dtype=np.object_)},
        "generated_text",
    )
    texts = [row[0].decode() for row in generated]
    assert texts == ["once upon a time there was", "a time there was a"], texts
    print(f"[{name}] text_generation: {texts}")

    images = np.stack([sample_image(), np.zeros((28, 28), np.uint8), 255 - sample_image()])  # [3, 28, 28]
    pixels = (images.astype(np.float32) / 255.0)[:, np.newaxis]  # [3, 1, 28, 28]
    mlp = infer(client, protocol, "mnist_mlp", {"input": pixels}, "logits")
    assert mlp.shape == (3, 10), mlp.shape
    cnn = infer(client, protocol, "mnist_cnn", {"INPUT__0": pixels}, "OUTPUT__0")
    assert cnn.shape == (3, 10) and np.isfinite(cnn).all(), cnn
    ensemble = infer(client, protocol, "mnist_ensemble", {"raw_image": images}, "logits")
    np.testing.assert_allclose(ensemble, mlp, rtol=1e-5, atol=1e-6)  # preprocess -> mnist_mlp == mnist_mlp
    print(f"[{name}] mnist_mlp argmax {mlp.argmax(1).tolist()}, mnist_cnn argmax {cnn.argmax(1).tolist()}")
    print(f"[{name}] mnist_ensemble logits equal mnist_mlp's on the preprocessed images")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--http-url", default="localhost:8000", help="host:port of the HTTP front end")
    parser.add_argument("--grpc-url", default="localhost:8001", help="host:port of the gRPC front end")
    args = parser.parse_args()

    with httpclient.InferenceServerClient(args.http_url) as client:
        check_all(client, httpclient, "http")
    with grpcclient.InferenceServerClient(args.grpc_url) as client:
        check_all(client, grpcclient, "grpc")
    print("OK")


if __name__ == "__main__":
    main()
