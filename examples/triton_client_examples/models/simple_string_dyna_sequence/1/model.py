"""What tritonclient's dyna sequence clients expect: the running sum of a sequence's inputs, plus the correlation
id (the CORRID control, a number or a string holding one) on the sequence's last request."""

import numpy as np

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.sums = {}  # correlation id -> running sum; a sequence stays on one instance

    def execute(self, requests):
        responses = []
        for request in requests:
            value, start, end, ready, corrid = (
                pb_utils.get_input_tensor_by_name(request, name).as_numpy().reshape(-1)[0]
                for name in ("INPUT", "START", "END", "READY", "CORRID")
            )
            key = int(corrid.decode() if isinstance(corrid, bytes) else corrid)
            total = 0
            if ready:
                total = (0 if start else self.sums.get(key, 0)) + int(value)
                self.sums[key] = total
                if end:
                    del self.sums[key]
                    total += key
            output = pb_utils.Tensor("OUTPUT", np.array([[total]], dtype=np.int32))
            responses.append(pb_utils.InferenceResponse([output]))
        return responses
