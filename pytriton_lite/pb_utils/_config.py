"""The model-config helpers: ``ModelConfig`` (what ``auto_complete_config`` receives and returns) and the
lookups over ``json.loads(args["model_config"])``.

The dict is Triton's JSON form of the config: proto field names, every list and scalar present (``input``
and ``output`` exist even when empty), ``data_type`` as ``"TYPE_FP32"``, dims as numbers.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Sequence, Union

_TENSOR_PROPERTIES = {"input": ("name", "data_type", "dims", "optional"), "output": ("name", "data_type", "dims")}


def _tensor_config(model_config: Dict[str, Any], key: str, name: str) -> Optional[Dict[str, Any]]:
    for tensor in model_config.get(key, ()):
        if tensor.get("name") == name:
            return tensor
    return None


def get_input_config_by_name(model_config: Dict[str, Any], name: str) -> Optional[Dict[str, Any]]:
    """The ``input`` entry called ``name`` of a model config dict, or None."""
    return _tensor_config(model_config, "input", name)


def get_output_config_by_name(model_config: Dict[str, Any], name: str) -> Optional[Dict[str, Any]]:
    """The ``output`` entry called ``name`` of a model config dict, or None."""
    return _tensor_config(model_config, "output", name)


def using_decoupled_model_transaction_policy(model_config: Dict[str, Any]) -> bool:
    """Whether the config sets ``model_transaction_policy { decoupled: true }``."""
    return bool(model_config.get("model_transaction_policy", {}).get("decoupled", False))


class ModelConfig:
    """The config ``auto_complete_config`` completes: ``add_input``, ``add_output``, ``set_max_batch_size``,
    ``set_dynamic_batching``, ``set_model_transaction_policy``; ``as_dict()`` reads it. What the function
    returns becomes the model's config."""

    def __init__(self, model_config: Union[str, Dict[str, Any]]) -> None:
        config = json.loads(model_config) if isinstance(model_config, str) else model_config
        config.setdefault("name", "")
        config.setdefault("max_batch_size", 0)
        config.setdefault("input", [])
        config.setdefault("output", [])
        self._model_config: Dict[str, Any] = config

    @property
    def _name(self) -> str:
        return str(self._model_config["name"])

    def as_dict(self) -> Dict[str, Any]:
        """The config as a dict (read it; change it through the methods)."""
        return self._model_config

    def set_max_batch_size(self, max_batch_size: int) -> None:
        """Set ``max_batch_size``; a ValueError if the config already asks for a larger one."""
        configured = int(self._model_config["max_batch_size"])
        if configured > max_batch_size:
            raise ValueError(
                f"configuration specified max_batch_size {configured}, but in auto-complete-config function for "
                f"model '{self._name}' specified max_batch_size {max_batch_size}"
            )
        self._model_config["max_batch_size"] = max_batch_size

    def set_dynamic_batching(self) -> None:
        """Use the dynamic batcher (with its defaults) unless the config has a scheduler: a ValueError for
        ``sequence_batching`` or ``ensemble_scheduling``."""
        for scheduler in ("sequence_batching", "ensemble_scheduling"):
            if scheduler in self._model_config:
                raise ValueError(
                    f"Configuration specified scheduling_choice as '{scheduler}', but auto-complete-config function "
                    f"for model '{self._name}' tries to set scheduling_choice as 'dynamic_batching'"
                )
        self._model_config.setdefault("dynamic_batching", {})

    def add_input(self, input: Dict[str, Any]) -> None:
        """Add an input ``{"name", "data_type", "dims"[, "optional"]}``, or complete the config's input of that
        name; a ValueError if they disagree."""
        self._add_tensor("input", input)

    def add_output(self, output: Dict[str, Any]) -> None:
        """Add an output ``{"name", "data_type", "dims"}``, or complete the config's output of that name."""
        self._add_tensor("output", output)

    def _add_tensor(self, kind: str, tensor: Dict[str, Any]) -> None:
        properties = _TENSOR_PROPERTIES[kind]
        label = f"{kind} '{tensor.get('name', '')}' in auto-complete-config function for model '{self._name}'"
        if any(key not in properties for key in tensor):
            allowed = ", ".join(f"'{p}'" for p in properties)
            raise ValueError(f"{label} contains property other than {allowed}.")
        for key in ("name", "data_type", "dims"):
            if key not in tensor:
                raise ValueError(f"{label} is missing '{key}' property.")
        existing = _tensor_config(self._model_config, kind, tensor["name"])
        if existing is None:
            self._model_config[kind].append(tensor)
            return
        self._check_same(kind, existing, tensor)
        existing.update(tensor)

    def _check_same(self, kind: str, existing: Dict[str, Any], tensor: Dict[str, Any]) -> None:
        name = tensor["name"]
        configured_type = existing.get("data_type", "TYPE_INVALID")
        if configured_type not in ("TYPE_INVALID", tensor["data_type"]):
            raise ValueError(
                f"unable to load model '{self._name}', configuration expects datatype {configured_type} for "
                f"{kind} '{name}', model provides {tensor['data_type']}"
            )
        configured_dims: Sequence[Any] = existing.get("dims") or []
        if configured_dims and list(configured_dims) != list(tensor["dims"]):
            raise ValueError(
                f"model '{self._name}', tensor '{name}': the model expects dims {list(tensor['dims'])} but the model "
                f"configuration specifies dims {list(configured_dims)}"
            )
        if "optional" in existing and "optional" in tensor and existing["optional"] != tensor["optional"]:
            raise ValueError(
                f"model '{self._name}', tensor '{name}': the model expects optional {tensor['optional']} but the "
                f"model configuration specifies optional {existing['optional']}"
            )

    def set_model_transaction_policy(self, transaction_policy_dict: Dict[str, Any]) -> None:
        """Set ``model_transaction_policy`` (its only property: ``decoupled``); a ValueError to change a
        ``decoupled`` the config already sets."""
        if any(key != "decoupled" for key in transaction_policy_dict):
            raise ValueError(
                f"model transaction property in auto-complete-config function for model '{self._name}' contains "
                "property other than 'decoupled'."
            )
        policy = self._model_config.setdefault("model_transaction_policy", {})
        if "decoupled" not in transaction_policy_dict:
            return
        decoupled = transaction_policy_dict["decoupled"]
        if "decoupled" in policy and policy["decoupled"] != decoupled:
            raise ValueError(
                f"trying to change decoupled property in auto-complete-config for model '{self._name}', which is "
                f"already set to '{policy['decoupled']}'."
            )
        policy["decoupled"] = decoupled


__all__ = [
    "ModelConfig",
    "get_input_config_by_name",
    "get_output_config_by_name",
    "using_decoupled_model_transaction_policy",
]
