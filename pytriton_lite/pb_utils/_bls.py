"""BLS: ``InferenceRequest(...).exec()`` and ``async_exec()`` call other models of the server serving the model.

Which server: the python backend binds each instance's ``LoadContext`` while ``execute`` runs (a context
variable, so an ``async def execute`` and the tasks it starts see it too), and a request captures it when it
is created. A thread the model starts has neither; there the caller's module tells: each model instance's
modules are imported under ``_pytriton_lite_models.<token>``, and the backend registers every token's
context. Failing that, a process serving one repository has one context.
"""

from __future__ import annotations

import contextvars
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from pytriton_lite.pb_utils._errors import TritonModelException, from_exception
from pytriton_lite.pb_utils._response import InferenceResponse, ResponseIterator
from pytriton_lite.pb_utils._tensor import Tensor
from pytriton_lite.types import InferenceRequest as CoreRequest

if TYPE_CHECKING:
    from pytriton_lite.repository.backend import LoadContext

#: the package under which the python backend imports every model instance's modules
MODEL_PACKAGE = "_pytriton_lite_models"
_PREFIX = MODEL_PACKAGE + "."
_MAX_FRAMES = 64

_CURRENT: contextvars.ContextVar[Optional[LoadContext]] = contextvars.ContextVar("pb_utils_bls", default=None)
_BY_TOKEN: Dict[str, LoadContext] = {}


def bind(context: Optional[LoadContext]) -> contextvars.Token[Optional[LoadContext]]:
    """Make ``context`` the BLS target of the running ``execute`` (undo with ``unbind``)."""
    return _CURRENT.set(context)


def unbind(token: contextvars.Token[Optional[LoadContext]]) -> None:
    _CURRENT.reset(token)


def current() -> Optional[LoadContext]:
    return _CURRENT.get()


def register(token: str, context: LoadContext) -> None:
    """The modules under ``_pytriton_lite_models.<token>`` belong to a model served through ``context``."""
    _BY_TOKEN[token] = context


def unregister(token: str) -> None:
    _BY_TOKEN.pop(token, None)


def _from_caller() -> Optional[LoadContext]:
    frame: Any = sys._getframe(2)
    for _ in range(_MAX_FRAMES):
        if frame is None:
            return None
        module = frame.f_globals.get("__name__", "")
        if module.startswith(_PREFIX):
            context = _BY_TOKEN.get(module.split(".", 2)[1])
            if context is not None:
                return context
        frame = frame.f_back
    return None


def resolve(captured: Optional[LoadContext]) -> LoadContext:
    """The context a BLS request goes through (see the module docstring for the order)."""
    context = captured if captured is not None else _CURRENT.get()
    if context is None:
        context = _from_caller()
    if context is None:
        distinct = {id(c): c for c in _BY_TOKEN.values()}
        if len(distinct) == 1:
            context = next(iter(distinct.values()))
    if context is None:
        raise TritonModelException(
            "BLS: InferenceRequest.exec() and async_exec() work only in a model served by pytriton_lite"
        )
    return context


def core_request(
    model_name: str,
    model_version: int,
    inputs: List[Tensor],
    requested_output_names: List[str],
    request_id: str,
    timeout_us: int,
    parameters: Dict[str, Any],
    correlation_id: Union[int, str] = 0,
    flags: int = 0,
) -> CoreRequest:
    """A BLS request as the server's ``InferenceRequest`` (no requested outputs = all of them)."""
    arrays = {}
    for tensor in inputs:
        if not isinstance(tensor, Tensor):
            raise TritonModelException(f"BLS request inputs must be pb_utils.Tensor objects, got {type(tensor)}")
        arrays[tensor.name()] = tensor.as_numpy()
    return CoreRequest(
        model_name=model_name,
        model_version="" if model_version is None or int(model_version) < 0 else str(model_version),
        inputs=arrays,
        parameters=dict(parameters),
        requested_outputs=list(requested_output_names) or None,
        id=request_id,
        timeout_us=timeout_us or None,
        correlation_id=correlation_id,
        flags=flags,
    )


def run(context: LoadContext, request: CoreRequest, decoupled: bool) -> Any:
    """A blocking BLS call: a response, or a ``ResponseIterator`` when ``decoupled``; errors come back as an
    error response, as in Triton."""
    if decoupled:
        try:
            responses = [InferenceResponse._from_core(r) for r in context.infer_stream(request)]
        except Exception as exc:  # noqa: BLE001 - the caller gets any failure as an error response
            responses = [InferenceResponse._failed(from_exception(exc))]
        return ResponseIterator(responses)
    timeout_s = request.timeout_us / 1e6 if request.timeout_us else None
    try:
        return InferenceResponse._from_core(context.infer(request, timeout_s))
    except Exception as exc:  # noqa: BLE001
        return InferenceResponse._failed(from_exception(exc))


async def run_async(context: LoadContext, request: CoreRequest, decoupled: bool) -> Any:
    """``async_exec``: ``run`` without blocking the caller's event loop."""
    if decoupled:
        responses = []
        try:
            async for response in context.infer_stream_async(request):
                responses.append(InferenceResponse._from_core(response))
        except Exception as exc:  # noqa: BLE001
            responses.append(InferenceResponse._failed(from_exception(exc)))
        return ResponseIterator(responses)
    try:
        return InferenceResponse._from_core(await context.infer_async(request))
    except Exception as exc:  # noqa: BLE001
        return InferenceResponse._failed(from_exception(exc))


__all__ = ["MODEL_PACKAGE", "bind", "core_request", "current", "register", "resolve", "run", "run_async", "unbind"]
