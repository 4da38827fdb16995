"""Client for the "colour" image classifier, in the steps of tritonclient's image_client example.

1. Read the model's metadata and config: one input with a ``format`` (FORMAT_NCHW or FORMAT_NHWC) and a
   3-channel ``[c, h, w]`` shape, one FP32 output with one score per class.
2. Make images with numpy (through PIL, resized as image_client does, when PIL is installed), as FP32 pixels
   in 0..255 (image_client's scaling NONE), laid out as the input's format says.
3. Ask for the top 3 classes (``class_count=3``): the server answers "value:index:label" strings, the labels
   from the model's ``label_filename``; check the best class of each image.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any, Dict, List, Tuple

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

LOGGER = logging.getLogger("examples.image_classification.client")
MODEL = "colour"
CLASSES = 3
# the images to classify: name -> RGB colour (0..255), with the label the model should rank first
IMAGES = {"tomato": ((230, 20, 30), "RED"), "sky": ((20, 40, 240), "BLUE"), "snow": ((250, 250, 245), "WHITE")}


def _client(url: str) -> Tuple[Any, Any]:
    """(tritonclient module, client) for ``grpc://host:port``, ``http://host:port`` or ``host:port`` (HTTP)."""
    if url.startswith("grpc://"):
        return grpcclient, grpcclient.InferenceServerClient(url[len("grpc://") :])
    return httpclient, httpclient.InferenceServerClient(url.split("://", 1)[-1])


def _wait_ready(client: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not _ready(client):
        if time.monotonic() > deadline:
            raise TimeoutError(f"model {MODEL!r} not ready after {timeout_s} s")
        time.sleep(0.2)  # polling interval


def _ready(client: Any) -> bool:
    try:
        return bool(client.is_model_ready(MODEL))
    except Exception:  # noqa: BLE001 - not up yet
        return False


def parse_model(module: Any, client: Any) -> Dict[str, Any]:
    """What image_client's parse_model checks, read from either protocol's metadata and config."""
    if module is grpcclient:
        metadata = client.get_model_metadata(MODEL)
        config = client.get_model_config(MODEL).config
        if len(metadata.inputs) != 1 or len(metadata.outputs) != 1:
            raise ValueError("expecting 1 input and 1 output")
        fmt = grpcclient.model_config_pb2.ModelInput.Format.Name(config.input[0].format)
        input_name, output_name = metadata.inputs[0].name, metadata.outputs[0].name
        input_shape, output_datatype = list(metadata.inputs[0].shape), metadata.outputs[0].datatype
        max_batch_size = config.max_batch_size
    else:
        metadata = client.get_model_metadata(MODEL)
        config = client.get_model_config(MODEL)
        if len(metadata["inputs"]) != 1 or len(metadata["outputs"]) != 1:
            raise ValueError("expecting 1 input and 1 output")
        fmt = config["input"][0]["format"]
        input_name, output_name = metadata["inputs"][0]["name"], metadata["outputs"][0]["name"]
        input_shape, output_datatype = metadata["inputs"][0]["shape"], metadata["outputs"][0]["datatype"]
        max_batch_size = config["max_batch_size"]
    if output_datatype != "FP32":
        raise ValueError(f"expecting output datatype FP32, got {output_datatype}")
    if fmt not in ("FORMAT_NCHW", "FORMAT_NHWC"):
        raise ValueError(f"unexpected input format {fmt}, expecting FORMAT_NCHW or FORMAT_NHWC")
    dims = [int(d) for d in input_shape[1:]] if max_batch_size > 0 else [int(d) for d in input_shape]
    c, h, w = dims if fmt == "FORMAT_NCHW" else (dims[2], dims[0], dims[1])
    if c != 3:
        raise ValueError(f"expecting 3 channels, got {c}")
    return {"input": input_name, "output": output_name, "format": fmt, "c": c, "h": h, "w": w}


def _chw(model: Dict[str, Any]) -> Tuple[int, int, int]:
    return model["c"], model["h"], model["w"]


def make_image(rgb: Tuple[int, int, int], model: Dict[str, Any]) -> np.ndarray:
    """An HWC image of one colour with a little noise, as FP32 0..255, laid out as the model says."""
    rng = np.random.default_rng(sum(rgb))
    size = (model["h"] + 4, model["w"] + 4)  # larger than the model's input: resized below, as image_client does
    pixels = np.clip(np.array(rgb)[None, None, :] + rng.integers(-10, 10, (*size, 3)), 0, 255).astype(np.uint8)
    try:
        from PIL import Image
    except ImportError:
        resized = pixels[: model["h"], : model["w"]]  # no PIL: crop instead of resizing
    else:
        image = Image.fromarray(pixels).convert("RGB").resize((model["w"], model["h"]), Image.BILINEAR)
        resized = np.asarray(image)
    scaled = resized.astype(np.float32)  # image_client's scaling NONE: pixels stay 0..255
    return np.transpose(scaled, (2, 0, 1)) if model["format"] == "FORMAT_NCHW" else scaled


def classify(module: Any, client: Any, model: Dict[str, Any], images: np.ndarray) -> List[List[Tuple[str, ...]]]:
    tensor = module.InferInput(model["input"], list(images.shape), "FP32")
    tensor.set_data_from_numpy(images)
    output = module.InferRequestedOutput(model["output"], class_count=CLASSES)
    result = client.infer(MODEL, [tensor], outputs=[output])
    rows = result.as_numpy(model["output"])  # [batch, CLASSES] of b"value:index:label"
    return [[tuple(item.decode().split(":")) for item in row] for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="localhost:8000", help="http://host:port, grpc://host:port or host:port")
    parser.add_argument("--init-timeout-s", type=float, default=60.0, help="How long to wait for the model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    module, client = _client(args.url)
    try:
        _wait_ready(client, args.init_timeout_s)
        model = parse_model(module, client)
        LOGGER.info("model %s: input %s, %s, c=%d h=%d w=%d", MODEL, model["input"], model["format"], *_chw(model))
        batch = np.stack([make_image(rgb, model) for rgb, _ in IMAGES.values()])
        for (name, (_, expected)), classes in zip(IMAGES.items(), classify(module, client, model, batch)):
            LOGGER.info("Image '%s':", name)
            for value, index, label in classes:
                LOGGER.info("    %s (%s) = %s", value, index, label)  # image_client's output format
            assert len(classes) == CLASSES, classes
            assert classes[0][2] == expected, (name, classes)
            scores = [float(value) for value, _, _ in classes]
            assert scores == sorted(scores, reverse=True), classes
    finally:
        client.close()
    LOGGER.info("OK")


if __name__ == "__main__":
    main()
