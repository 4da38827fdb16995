"""Scores six colour classes from an image's mean colour: no weights, no downloads.

IMAGE is [batch, 3, H, W] FP32 pixels in 0..255 (NCHW, as config.pbtxt declares; what image_client sends
with ``-s NONE``). The score of each class is how close the image's mean (r, g, b), scaled to [0, 1], is to
that class's colour: 1 - distance / sqrt(3), so 1.0 is an exact match.
"""

import numpy as np

import triton_python_backend_utils as pb_utils

# the classes of labels.txt, in its order
COLOURS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0], [0.5, 0.5, 0.5]],
    dtype=np.float32,
)


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            image = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            mean = image.reshape(image.shape[0], 3, -1).mean(axis=2) / 255.0  # [batch, 3] in [0, 1]
            distance = np.linalg.norm(mean[:, None, :] - COLOURS[None, :, :], axis=2)  # [batch, classes]
            scores = (1.0 - distance / np.sqrt(3.0)).astype(np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("SCORES", scores)]))
        return responses
