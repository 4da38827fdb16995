"""Triton's example model ``simple_string``: the sum and the difference of two [16] tensors of integers written
as utf-8 strings, answered as strings."""

import numpy as np

import triton_python_backend_utils as pb_utils


def _as_strings(values):
    return np.array([str(v).encode("utf-8") for v in values.reshape(-1)], dtype=np.object_).reshape(values.shape)


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            in0, in1 = (
                pb_utils.get_input_tensor_by_name(request, name).as_numpy().astype(np.int64)
                for name in ("INPUT0", "INPUT1")
            )
            outputs = [
                pb_utils.Tensor("OUTPUT0", _as_strings(in0 + in1)),
                pb_utils.Tensor("OUTPUT1", _as_strings(in0 - in1)),
            ]
            responses.append(pb_utils.InferenceResponse(outputs))
        return responses
