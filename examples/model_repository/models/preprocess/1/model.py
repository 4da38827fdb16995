"""Ensemble step 1: a [28, 28] UINT8 image becomes the [1, 28, 28] FP32 pixels in [0, 1] that mnist_mlp takes."""

import numpy as np

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "raw_image").as_numpy()  # [batch, 28, 28] uint8
            pixels = (raw.astype(np.float32) / 255.0)[:, np.newaxis, :, :]
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("pixels", pixels)]))
        return responses
