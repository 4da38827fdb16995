"""What ``Triton.bind`` and ``Triton()`` need besides the server: default tensor names, PyTriton's
``__triton_context__`` on each callable, and the refusal of SageMaker mode."""

from __future__ import annotations

import dataclasses

from pytriton_lite.config import TritonConfig
from pytriton_lite.core.model import Model
from pytriton_lite.exceptions import PyTritonValidationError
from pytriton_lite.model_config import Tensor


def refuse_sagemaker(config: TritonConfig) -> None:
    if config.allow_sagemaker:
        raise PyTritonValidationError(
            "allow_sagemaker is not supported by pytriton_lite: there is no SageMaker front end (/ping, "
            "/invocations), and nothing would listen on sagemaker_port. Serve the v2 HTTP routes instead."
        )


def named_tensor(tensor: Tensor, default: str) -> Tensor:
    if tensor.name:
        return tensor
    return dataclasses.replace(tensor, name=default)  # keeps labels and format


def attach_context(model: Model) -> None:
    """Give each callable PyTriton's ``__triton_context__`` so decorators can read the model config."""
    try:
        from pytriton_lite.decorators import attach_triton_context
    except ImportError:
        return
    from pytriton_lite.model_config import TensorSpec, TritonModelConfig

    config = TritonModelConfig(
        model_name=model.name,
        model_version=model.version,
        max_batch_size=model.max_batch_size,
        batching=model.max_batch_size > 0,
        batcher=model.config.batcher if model.max_batch_size > 0 else None,
        decoupled=model.decoupled,
        inputs=[TensorSpec(t.name, t.shape, t.dtype, t.optional) for t in model.inputs],  # type: ignore[arg-type]
        outputs=[TensorSpec(t.name, t.shape, t.dtype) for t in model.outputs],  # type: ignore[arg-type]
        response_cache=None,
        model_warmup=model.config.model_warmup,
    )
    for func in model.infer_funcs:
        attach_triton_context(func, config)


__all__ = ["attach_context", "named_tensor", "refuse_sagemaker"]
