"""Adapters for the four kinds of infer callable: sync, ``async def``, generator and async generator.

An infer callable returns a value, an awaitable, a generator (or any iterator) or an async generator. The
instance thread calls it and hands what came back to one of two adapters, both coroutines that run on the
instance's private loop: ``one_result`` for ordinary models (exactly one result), ``for_each`` for
decoupled models (zero or more). Nothing here touches the serving loop.
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, List

from pytriton_lite.exceptions import ModelExecutionError


def is_async_iterable(value: Any) -> bool:
    return inspect.isasyncgen(value) or hasattr(value, "__anext__")


def is_iterator(value: Any) -> bool:
    """A generator or another iterator (``map``, ``filter``...), but not a list/dict result."""
    return inspect.isgenerator(value) or (hasattr(value, "__next__") and not isinstance(value, (list, tuple, dict)))


async def settle(value: Any) -> Any:
    """Await ``value`` while it is awaitable (``async def`` callables, and coroutines returning coroutines)."""
    while inspect.isawaitable(value):
        value = await value
    return value


async def one_result(value: Any, model: str) -> Any:
    """The single result of an ordinary (not decoupled) model's call, whatever kind the callable is."""
    value = await settle(value)
    if is_async_iterable(value):
        return _single([item async for item in value], model)
    if is_iterator(value):
        return _single(list(value), model)
    return value


async def for_each(value: Any, emit: Callable[[Any], Awaitable[bool]]) -> None:
    """Hand each result of a decoupled model's call to ``emit``, in order, until it returns False; then close
    the source. 0..n results: an iterator or async iterator yields them, a plain value is one, None is none.

    A sync generator's ``next()`` runs on the instance loop, blocking it only while it computes an item.
    """
    value = await settle(value)
    try:
        if is_async_iterable(value):
            async for item in value:
                if not await emit(item):
                    break
        elif is_iterator(value):
            for item in value:
                if not await emit(item):
                    break
        elif value is not None:
            await emit(value)
    finally:
        await close(value)


async def close(value: Any) -> None:
    """Close a generator or async generator that was not exhausted (stops the model's work)."""
    aclose = getattr(value, "aclose", None)
    if aclose is not None:
        await aclose()
        return
    sync_close = getattr(value, "close", None)
    if sync_close is not None:
        sync_close()


def _single(items: List[Any], model: str) -> Any:
    if len(items) != 1:
        raise ModelExecutionError(
            f"Model '{model}' is not decoupled: its infer function must produce exactly one result, got {len(items)}"
        )
    return items[0]


__all__ = ["close", "for_each", "is_async_iterable", "is_iterator", "one_result", "settle"]
