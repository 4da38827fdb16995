"""What tritonclient's simple sequence clients expect of ``simple_sequence``: the input, plus one on the first
request of a sequence (OUTPUT = (INPUT + START) * READY)."""

import numpy as np

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            value, start, ready = (
                pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in ("INPUT", "START", "READY")
            )
            output = pb_utils.Tensor("OUTPUT", ((value + start) * ready).astype(np.int32))
            responses.append(pb_utils.InferenceResponse([output]))
        return responses
