"""A python-backend text-generation toy, shaped like the tutorials' HuggingFace model.py (a tokenizer and a
pipeline replaced by utils.generate): one string in, one string out, per row of a dynamically formed batch."""

import json

import numpy as np
from utils import generate  # the sibling utils.py of this version folder

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.max_new_words = int(config["parameters"]["max_new_words"]["string_value"])
        self.logger = pb_utils.Logger
        self.logger.log_info(f"text_generation instance {args['model_instance_name']} ready")

    def execute(self, requests):
        responses = []
        for request in requests:
            prompts = pb_utils.get_input_tensor_by_name(request, "prompt").as_numpy()  # [batch, 1] of bytes
            texts = [[generate(p[0].decode("utf-8"), self.max_new_words).encode("utf-8")] for p in prompts]
            out = pb_utils.Tensor("generated_text", np.array(texts, dtype=np.object_))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses

    def finalize(self):
        self.logger.log_info("text_generation instance finalized")
