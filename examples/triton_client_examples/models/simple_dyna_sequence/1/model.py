"""What tritonclient's dyna sequence clients expect of ``simple_dyna_sequence``: the input, plus one on the first
request of a sequence, plus the correlation id (the CORRID control) on its last:
OUTPUT = (INPUT + START) * READY + END * CORRID."""

import numpy as np

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            value, start, end, ready, corrid = (
                pb_utils.get_input_tensor_by_name(request, name).as_numpy().astype(np.int64)
                for name in ("INPUT", "START", "END", "READY", "CORRID")
            )
            output = pb_utils.Tensor("OUTPUT", ((value + start) * ready + end * corrid).astype(np.int32))
            responses.append(pb_utils.InferenceResponse([output]))
        return responses
