"""Writes the binary model files of this repository (nothing is downloaded), and the JSON request bodies the
README's curl commands send:

- models/mnist_mlp/1/model.onnx: an MNIST-like MLP ([batch, 1, 28, 28] -> 10 logits) built with onnx.helper,
  with a dynamic batch dimension;
- models/mnist_cnn/1/model.pt: a small TorchScript CNN (same input and output shapes) saved with torch.jit;
- requests/*.json: one request body per image model.

Usage: python build_models.py [--models DIR]   (needs onnx and torch: pip install "pytriton-lite[onnx,torch]")
"""

import argparse
import json
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def build_onnx_mlp(path: pathlib.Path) -> None:
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    weights = {
        "W1": (rng.standard_normal((784, 32)) * 0.05).astype(np.float32),
        "B1": (rng.standard_normal(32) * 0.1).astype(np.float32),
        "W2": (rng.standard_normal((32, 10)) * 0.3).astype(np.float32),
        "B2": (rng.standard_normal(10) * 0.1).astype(np.float32),
    }
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W1"], ["h0"]),
        helper.make_node("Add", ["h0", "B1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "W2"], ["h3"]),
        helper.make_node("Add", ["h3", "B2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mnist_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(array, name) for name, array in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, str(path))


def build_torchscript_cnn(path: pathlib.Path) -> None:
    import torch

    class MnistCnn(torch.nn.Module):
        """[batch, 1, 28, 28] -> conv 3x3 -> relu -> max-pool -> linear -> [batch, 10]."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3)
            self.fc = torch.nn.Linear(4 * 13 * 13, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1))

    torch.manual_seed(0)
    module = torch.jit.script(MnistCnn().eval())
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(module, str(path))


def sample_image() -> np.ndarray:
    """A deterministic 28x28 UINT8 'digit': a bright vertical bar (a 1) on black."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:24, 12:16] = 255
    return image


def write_requests(folder: pathlib.Path) -> None:
    image = sample_image()
    pixels = (image.astype(np.float32) / 255.0).reshape(1, 1, 28, 28)
    folder.mkdir(parents=True, exist_ok=True)
    bodies = {
        "mnist_mlp.json": {"inputs": [tensor("input", "FP32", pixels)]},
        "mnist_cnn.json": {"inputs": [tensor("INPUT__0", "FP32", pixels)]},
        "mnist_ensemble.json": {"inputs": [tensor("raw_image", "UINT8", image.reshape(1, 28, 28))]},
    }
    for name, body in bodies.items():
        (folder / name).write_text(json.dumps(body))


def tensor(name: str, datatype: str, array: np.ndarray) -> dict:
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": array.flatten().tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=pathlib.Path, default=HERE / "models", help="the repository to write into")
    args = parser.parse_args()
    build_onnx_mlp(args.models / "mnist_mlp" / "1" / "model.onnx")
    build_torchscript_cnn(args.models / "mnist_cnn" / "1" / "model.pt")
    (args.models / "mnist_ensemble" / "1").mkdir(parents=True, exist_ok=True)  # an ensemble's (empty) version
    write_requests(args.models.parent / "requests")
    print(f"models written under {args.models}")


if __name__ == "__main__":
    main()
