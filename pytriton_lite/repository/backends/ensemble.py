"""The ensemble backend (``platform: "ensemble"``): Triton's ``ensemble_scheduling.step`` pipelines.

An ensemble has no model file and, in Triton, no instances of its own. Here it is served like any model (the
loader registers it with the data plane, so it has statistics, a queue and readiness), and its infer callables
run the step graph for each client request:

- every step whose inputs are all available runs at once, as a request to the step model through the data
  plane (``LoadContext.infer_async`` on the instance's own loop), so independent steps run concurrently and
  each step model batches the ensemble's traffic with its other traffic in its own batcher;
- a step's inputs come from the ensemble's inputs or from earlier steps' outputs by ``input_map`` (step model
  input -> ensemble tensor), its outputs are named by ``output_map`` (step model output -> ensemble tensor),
  and it asks the step model for exactly the outputs its ``output_map`` names; ``model_version: -1`` is the
  latest served version; the request's parameters go to every step;
- the ensemble's outputs are collected by name once every step has finished;
- a failing step fails the request with Triton's ``in ensemble '<ensemble>', ...`` words, naming the step's
  model; an ``InferenceError`` from the step keeps its class, so its HTTP status and gRPC code reach the
  client unchanged (a 400 from the step is a 400 from the ensemble); the other steps still running are
  cancelled.

Each client request goes through the graph on its own: the ensemble never concatenates requests (the steps'
batchers do the batching). When its batcher hands over several requests at once (``max_batch_size > 0`` and
every ensemble instance busy) they run concurrently; an error in one then fails that batch (the callable
contract has no per-request error), which is why there are several instances (below).

**Why one callable per placement, and at least ``MIN_CONCURRENCY``.** An ``async def`` callable holds its
instance until it returns, so the number of instances bounds how many client requests are inside the graph at
once. Triton puts no bound on it (``max_inflight_requests`` defaults to unlimited), and a step can only form
batches of several requests if several ensemble requests wait on it at the same time. An ensemble instance
costs a thread with an idle event loop and does no work itself, so this backend never goes below
``MIN_CONCURRENCY`` (8; the loader asks for that many placements): up to 8 client requests run through the graph
at once and a step can batch up to 8 of them. More requests queue in the ensemble's batcher; with
``max_batch_size > 0`` they are handed over together when an instance frees up, and still run concurrently, each
failing alone (a failed request's ``InferenceError`` stands in its place).

Decoupled steps and decoupled ensembles are refused at load (``_ensemble_graph``); so is everything else
Triton refuses there: see ``_ensemble_graph.build_plan``.
"""

from __future__ import annotations

import asyncio
import pathlib
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import numpy as np

from pytriton_lite.exceptions import InferenceError, ModelExecutionError
from pytriton_lite.repository.backend import InstancePlacement, LoadContext, LoadedModel, ModelSource, VersionSource
from pytriton_lite.repository.backends._ensemble_graph import Plan, Step, build_plan
from pytriton_lite.types import InferenceRequest, ParameterValue, Request

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

#: the fewest infer callables (instances) an ensemble gets: how many client requests are in its graph at once
MIN_CONCURRENCY = 8

_Outputs = Dict[str, np.ndarray]


class EnsembleRunner:
    """Runs a checked ``Plan`` for each request; stateless between calls, so one serves every instance."""

    def __init__(self, plan: Plan, context: LoadContext) -> None:
        self.plan = plan
        self.context = context
        self._initial_waiting = {step.index: len(step.needs) for step in plan.steps}
        self._start = [step for step in plan.steps if not step.needs]

    async def infer(self, requests: List[Request]) -> List[Any]:
        """The infer callable: one output dict per client request, in order; a request whose graph failed
        gets its ``InferenceError`` in its place (the core fails that request alone)."""
        if len(requests) == 1:
            return [await self.run(requests[0])]
        results = await asyncio.gather(*(self.run(request) for request in requests), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, InferenceError):
                raise result  # not a step's answer: fail the batch
        return list(results)

    async def run(self, request: Request) -> _Outputs:
        """One client request through the graph: each step starts as soon as its last input is there."""
        plan = self.plan
        tensors: _Outputs = {name: request.data[name] for name in plan.inputs if name in request.data}
        waiting = dict(self._initial_waiting)
        ready = list(self._start)
        for name in plan.inputs:  # an optional input left out counts as available: its steps do without it
            ready += self._resolve(name, waiting)
        running: Dict[asyncio.Future[_Outputs], Step] = {}
        try:
            # bounded: each step is started once, and each round waits for at least one running step to finish
            while ready or running:
                for step in ready:
                    running[asyncio.ensure_future(self._run_step(step, tensors, request.parameters))] = step
                ready = []
                done, _ = await asyncio.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
                for task in _failed_first(done):
                    del running[task]
                    produced = task.result()  # the step's (reworded) error, if it failed
                    tensors.update(produced)
                    for tensor in produced:
                        ready += self._resolve(tensor, waiting)
        finally:
            await _cancel(running)
        return {name: tensors[name] for name in plan.outputs}

    def _resolve(self, tensor: str, waiting: Dict[int, int]) -> List[Step]:
        """``tensor`` is available: the steps for which it was the last missing input."""
        newly = []
        for index in self.plan.consumers.get(tensor, ()):
            waiting[index] -= 1
            if waiting[index] == 0:
                newly.append(self.plan.steps[index])
        return newly

    async def _run_step(
        self, step: Step, tensors: _Outputs, parameters: Optional[Dict[str, ParameterValue]]
    ) -> _Outputs:
        """Call the step model; its mapped outputs, by ensemble tensor name."""
        request = InferenceRequest(
            model_name=step.model_name,
            model_version=step.model_version,
            inputs={model_input: tensors[tensor] for model_input, tensor in step.inputs if tensor in tensors},
            parameters=dict(parameters or {}),
            requested_outputs=[model_output for model_output, _ in step.outputs],
        )
        prefix = f"in ensemble '{self.plan.name}', model '{step.model_name}': "
        try:
            response = await self.context.infer_async(request)
        except InferenceError as e:
            raise _reworded(e, prefix + e.message) from e
        except Exception as e:  # a step model's bug: 500, like an exception in any infer callable
            raise ModelExecutionError(f"{prefix}{type(e).__name__}: {e}") from e
        produced: _Outputs = {}
        for model_output, tensor in step.outputs:
            value = response.outputs.get(model_output)
            if value is None:
                raise ModelExecutionError(
                    f"{prefix}the model returned no output '{model_output}' (ensemble tensor '{tensor}')"
                )
            produced[tensor] = value
        return produced


class EnsembleBackend:
    """``BACKEND`` of ``platform: "ensemble"``."""

    names: Sequence[str] = ("ensemble",)
    default_model_filename = ""

    def auto_complete(self, model: ModelSource, config: ModelConfigProto, version_dir: pathlib.Path) -> None:
        """Nothing to complete: an ensemble declares its inputs and outputs, and has no model file to read."""

    def load(self, source: VersionSource, placements: Sequence[InstancePlacement], context: LoadContext) -> LoadedModel:
        """Check the graph against the loaded step models (``ModelLoadError``) and hand out the runners."""
        plan = build_plan(source.config, context.model_config)
        runner = EnsembleRunner(plan, context)
        return LoadedModel(infer_funcs=[runner.infer] * max(MIN_CONCURRENCY, len(placements)))


BACKEND = EnsembleBackend()


# --- helpers ----------------------------------------------------------------------------------------------


def _reworded(error: InferenceError, message: str) -> InferenceError:
    """A copy of ``error`` (same class, status, headers, attributes) saying ``message``.

    Built without calling ``__init__``: subclasses such as ``DecoupledModelError`` take other arguments.
    """
    cls = type(error)
    copy = cls.__new__(cls)
    copy.__dict__.update(error.__dict__)
    copy.args = (message,)
    copy._message = message
    return copy


def _failed_first(done: Any) -> List[asyncio.Future[_Outputs]]:
    """The finished steps, failed ones first (so an error is raised before more steps start), each error
    retrieved (no 'exception was never retrieved' for the ones not raised)."""
    tasks = list(done)
    failed = [task for task in tasks if not task.cancelled() and task.exception() is not None]
    return failed + [task for task in tasks if task not in failed]


async def _cancel(tasks: Any) -> None:
    """Cancel what still runs and wait until it has stopped (its errors are dropped: one is enough)."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:  # finished but not looked at, because another step's error came first
        if task.done() and not task.cancelled():
            task.exception()


__all__ = ["BACKEND", "MIN_CONCURRENCY", "EnsembleBackend", "EnsembleRunner"]
