"""The python backend called directly: load (isolation, initialize args, load errors), auto_complete, finalize.

Models are written into ``tmp_path``; sources and placements are hand-made; BLS goes to a fake LoadContext.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from python_backend_support import (
    FakeContext,
    call,
    initialized,
    load,
    parse_config,
    placements,
    request,
    source,
    write_model,
)

from pytriton_lite.repository.backend import InstancePlacement, ModelLoadError, ModelSource
from pytriton_lite.repository.backends import backend_for
from pytriton_lite.repository.backends.python import BACKEND

IDENTITY = """
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def initialize(self, args):
        self.args = args

    def execute(self, requests):
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", data)]))
        return responses
"""

CONFIG = """
backend: "python"
max_batch_size: 4
input [{ name: "IN" data_type: TYPE_FP32 dims: [ 2 ] }]
output [{ name: "OUT" data_type: TYPE_FP32 dims: [ 2 ] }]
parameters { key: "scale" value: { string_value: "3" } }
"""


def _instance(loaded, index=0):
    return loaded.infer_funcs[index].__self__


def test_backend_is_registered_under_python():
    assert backend_for("python") is BACKEND
    assert BACKEND.names == ("python",)
    assert BACKEND.default_model_filename == "model.py"


def test_load_and_infer(tmp_path):
    write_model(tmp_path, "ident", IDENTITY)
    loaded = load(tmp_path, "ident", CONFIG)
    data = np.ones((1, 2), np.float32)
    [outputs] = call(loaded.infer_funcs[0], [request({"IN": data})])
    assert outputs["OUT"] is data
    loaded.finalize()


def test_initialize_gets_every_key_as_strings(tmp_path):
    model_dir = write_model(tmp_path, "ident", IDENTITY)
    loaded = load(tmp_path, "ident", CONFIG, count=2)
    args = _instance(loaded, 1).model.args
    assert set(args) == {
        "model_config",
        "model_instance_kind",
        "model_instance_name",
        "model_instance_device_id",
        "model_repository",
        "model_version",
        "model_name",
    }
    assert all(isinstance(v, str) for v in args.values())
    assert args["model_instance_kind"] == "CPU"
    assert args["model_instance_name"] == "ident_0_1"
    assert args["model_instance_device_id"] == "0"
    assert args["model_repository"] == str(model_dir)
    assert (args["model_version"], args["model_name"]) == ("1", "ident")
    config = json.loads(args["model_config"])
    assert config["name"] == "ident" and config["backend"] == "python" and config["max_batch_size"] == 4
    assert config["input"][0]["data_type"] == "TYPE_FP32" and config["input"][0]["dims"] == [2]
    assert config["parameters"] == {"scale": {"string_value": "3"}}
    assert config["output"][0]["name"] == "OUT"
    loaded.finalize()


def test_gpu_placement_args(tmp_path):
    write_model(tmp_path, "ident", IDENTITY)
    placement = InstancePlacement("ident_0", "KIND_GPU", 1, 0)
    loaded = initialized(BACKEND.load(source(tmp_path, "ident", CONFIG), [placement], FakeContext()))
    args = _instance(loaded).model.args
    assert (args["model_instance_kind"], args["model_instance_device_id"]) == ("GPU", "1")
    loaded.finalize()


COUNTER = """
import triton_python_backend_utils as pb_utils
import numpy as np

CALLS = []

class TritonPythonModel:
    def execute(self, requests):
        CALLS.append(len(requests))
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([len(CALLS)]))]) for _ in requests]
"""


def test_each_instance_has_its_own_object_and_module_globals(tmp_path):
    write_model(tmp_path, "counter", COUNTER)
    loaded = load(tmp_path, "counter", count=2)
    first, second = _instance(loaded, 0), _instance(loaded, 1)
    assert first.model is not second.model
    assert type(first.model) is not type(second.model)  # one module per instance, as with Triton's stubs
    for _ in range(3):
        call(loaded.infer_funcs[0], [request({})])
    [outputs] = call(loaded.infer_funcs[1], [request({})])
    assert outputs["OUT"].tolist() == [1]
    loaded.finalize()


SIBLINGS = """
import json
import triton_python_backend_utils as pb_utils
import numpy as np
import utils
from utils import VALUE
from . import utils as relative
from helpers import deep
from helpers.deep import DEEP
import shared_at_model_level
import helpers.deep

class TritonPythonModel:
    def execute(self, requests):
        import utils as again  # imports inside functions see the siblings too
        text = json.dumps([VALUE, relative.VALUE, again.VALUE, deep.DEEP, DEEP, helpers.deep.DEEP,
                           shared_at_model_level.NAME, __import__("utils").VALUE, utils.from_sibling()])
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([text.encode()], dtype=object))])
                for _ in requests]
"""


def _sibling_files(value: str):
    return {
        "1/utils.py": f"VALUE = {value!r}\nfrom other import OTHER\ndef from_sibling():\n    return OTHER\n",
        "1/other.py": f"OTHER = 'other-' + {value!r}\n",
        "1/helpers/__init__.py": "",
        "1/helpers/deep.py": f"DEEP = 'deep-' + {value!r}\n",
        "1/json.py": "raise RuntimeError('a sibling named like the standard library must not shadow it')\n",
        "shared_at_model_level.py": f"NAME = 'model-dir-' + {value!r}\n",
    }


def test_two_models_with_their_own_utils_do_not_collide(tmp_path):
    for name in ("alpha", "beta"):
        write_model(tmp_path, name, SIBLINGS, files=_sibling_files(name))
    before = set(sys.modules)
    loaded = {name: load(tmp_path, name) for name in ("alpha", "beta")}
    for name, model in loaded.items():
        [outputs] = call(model.infer_funcs[0], [request({})])
        deep, model_dir, other = f"deep-{name}", f"model-dir-{name}", f"other-{name}"
        assert json.loads(outputs["OUT"][0]) == [name, name, name, deep, deep, deep, model_dir, name, other]
    new = set(sys.modules) - before
    assert not {"utils", "other", "helpers", "shared_at_model_level"} & new
    assert all(n.startswith("_pytriton_lite_models") for n in new if "utils" in n or "helpers" in n)
    for model in loaded.values():
        model.finalize()
    assert not [n for n in sys.modules if n.startswith("_pytriton_lite_models.") and "utils" in n]


# --- load errors ----------------------------------------------------------------------------------------


def test_missing_model_file(tmp_path):
    (tmp_path / "nofile" / "1").mkdir(parents=True)
    with pytest.raises(ModelLoadError, match=r"Python model file not found in '.*nofile/1/model\.py'"):
        load(tmp_path, "nofile")


def test_model_file_must_be_python(tmp_path):
    write_model(tmp_path, "m", IDENTITY)
    with pytest.raises(ModelLoadError, match="must end with '.py'"):
        load(tmp_path, "m", 'backend: "python" default_model_filename: "model.txt"')


def test_default_model_filename(tmp_path):
    write_model(tmp_path, "m", "raise RuntimeError('not this one')", files={"1/other_name.py": IDENTITY})
    loaded = load(tmp_path, "m", CONFIG + 'default_model_filename: "other_name.py"')
    [outputs] = call(loaded.infer_funcs[0], [request({"IN": np.zeros((1, 2), np.float32)})])
    assert outputs["OUT"].shape == (1, 2)
    loaded.finalize()


def test_syntax_error(tmp_path):
    write_model(tmp_path, "m", "import numpy\nclass TritonPythonModel\n    pass\n")
    with pytest.raises(ModelLoadError, match=r"SyntaxError: .*\(model\.py, line 2\)"):
        load(tmp_path, "m")


def test_import_error_names_the_module_and_the_line(tmp_path):
    write_model(tmp_path, "m", "import numpy\nimport no_such_module_here\n")
    with pytest.raises(ModelLoadError) as info:
        load(tmp_path, "m")
    text = str(info.value)
    assert text.startswith("ModuleNotFoundError: No module named 'no_such_module_here'")
    assert "model.py(2): <module>" in text


INIT_FAILS = """
class TritonPythonModel:
    def initialize(self, args):
        self.scale = json_config()["scale"]

    def execute(self, requests):
        return []

def json_config():
    return {}
"""


def test_exception_in_initialize_carries_the_traceback(tmp_path):
    write_model(tmp_path, "m", INIT_FAILS)
    with pytest.raises(ModelLoadError) as info:
        load(tmp_path, "m")
    text = str(info.value)
    assert text.startswith("KeyError: 'scale'\n\nAt:\n")
    assert "model.py(4): initialize" in text
    assert "_python_instance" not in text and "python.py" not in text
    assert not [n for n in sys.modules if n.startswith("_pytriton_lite_models.m_")]


def test_class_and_execute_are_required(tmp_path):
    write_model(tmp_path, "noclass", "X = 1\n")
    with pytest.raises(ModelLoadError, match="defines no class TritonPythonModel"):
        load(tmp_path, "noclass")
    write_model(tmp_path, "noexec", "class TritonPythonModel:\n    pass\n")
    with pytest.raises(ModelLoadError, match="does not implement `execute`"):
        load(tmp_path, "noexec")


def test_a_failing_second_instance_finalizes_the_first(tmp_path):
    model = """
import pathlib
COUNT = pathlib.Path(__file__).parent / "count"

class TritonPythonModel:
    def initialize(self, args):
        if args["model_instance_name"].endswith("_1"):
            raise RuntimeError("second instance fails")

    def execute(self, requests):
        return []

    def finalize(self):
        COUNT.write_text("finalized")
"""
    write_model(tmp_path, "m", model)
    with pytest.raises(ModelLoadError, match="second instance fails"):
        load(tmp_path, "m", count=2)
    assert (tmp_path / "m" / "1" / "count").read_text() == "finalized"


# --- finalize -------------------------------------------------------------------------------------------

FINALIZE = """
import pathlib
import asyncio

class TritonPythonModel:
    async def initialize(self, args):
        await asyncio.sleep(0)
        self.path = pathlib.Path(args["model_repository"]) / args["model_version"] / "events"
        self.path.write_text("init;")

    def execute(self, requests):
        return []

    async def finalize(self):
        await asyncio.sleep(0)
        self.path.write_text(self.path.read_text() + "final;")
"""


def test_async_initialize_and_finalize(tmp_path):
    write_model(tmp_path, "m", FINALIZE)
    loaded = load(tmp_path, "m")
    loaded.finalize()
    assert (tmp_path / "m" / "1" / "events").read_text() == "init;final;"


def test_async_finalize_on_a_thread_running_a_loop(tmp_path):
    import asyncio

    write_model(tmp_path, "m", FINALIZE)
    loaded = load(tmp_path, "m")

    async def on_a_loop():
        loaded.finalize()

    asyncio.run(on_a_loop())
    assert (tmp_path / "m" / "1" / "events").read_text() == "init;final;"


def test_exception_in_finalize_is_logged(tmp_path, caplog):
    model = """
class TritonPythonModel:
    def execute(self, requests):
        return []

    def finalize(self):
        raise ValueError("cleanup failed")
"""
    write_model(tmp_path, "m", model)
    loaded = load(tmp_path, "m")
    loaded.finalize()
    assert "finalize() of model instance 'm_0' failed" in caplog.text
    assert "cleanup failed" in caplog.text


# --- auto_complete --------------------------------------------------------------------------------------

AUTO = """
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config):
        config = auto_complete_model_config.as_dict()
        assert config["input"] == [] and config["name"] == "auto"
        auto_complete_model_config.add_input({"name": "IN", "data_type": "TYPE_FP32", "dims": [4]})
        auto_complete_model_config.add_input({"name": "OPT", "data_type": "TYPE_INT32", "dims": [1], "optional": True})
        auto_complete_model_config.add_output({"name": "OUT", "data_type": "TYPE_STRING", "dims": [-1]})
        auto_complete_model_config.set_max_batch_size(8)
        auto_complete_model_config.set_dynamic_batching()
        auto_complete_model_config.set_model_transaction_policy({"decoupled": True})
        return auto_complete_model_config

    def execute(self, requests):
        return None
"""


def _model(tmp_path, name):
    return ModelSource(name, tmp_path, tmp_path / name)


def test_auto_complete_fills_the_config_in_place(tmp_path):
    write_model(tmp_path, "auto", AUTO)
    config = parse_config('backend: "python"', "")
    BACKEND.auto_complete(_model(tmp_path, "auto"), config, tmp_path / "auto" / "1")
    assert config.name == "auto" and config.max_batch_size == 8
    assert [(t.name, t.data_type, list(t.dims), t.optional) for t in config.input] == [
        ("IN", 11, [4], False),
        ("OPT", 8, [1], True),
    ]
    assert [(t.name, t.data_type, list(t.dims)) for t in config.output] == [("OUT", 13, [-1])]
    assert config.HasField("dynamic_batching")
    assert config.model_transaction_policy.decoupled
    assert config.backend == "python"
    assert not [n for n in sys.modules if n.startswith("_pytriton_lite_models.auto_autocomplete")]


def test_auto_complete_without_the_hook_changes_nothing(tmp_path):
    write_model(tmp_path, "m", IDENTITY)
    config = parse_config(CONFIG, "m")
    before = config.SerializeToString()
    BACKEND.auto_complete(_model(tmp_path, "m"), config, tmp_path / "m" / "1")
    assert config.SerializeToString() == before


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("return None", "must return a valid pb.ModelConfig object"),
        ("raise ValueError('no way')", r"auto_complete_config of model 'm' failed: ValueError: no way"),
        (
            "c.as_dict()['no_such_field'] = 1\n        return c",
            "made an invalid model configuration",
        ),
        (
            "c.set_max_batch_size(1)\n        return c",
            "configuration specified max_batch_size 4",
        ),
    ],
)
def test_auto_complete_errors(tmp_path, body, match):
    model = f"""
class TritonPythonModel:
    @staticmethod
    def auto_complete_config(c):
        {body}

    def execute(self, requests):
        return []
"""
    write_model(tmp_path, "m", model)
    with pytest.raises(ModelLoadError, match=match):
        BACKEND.auto_complete(_model(tmp_path, "m"), parse_config(CONFIG, "m"), tmp_path / "m" / "1")


def test_auto_complete_of_a_broken_model(tmp_path):
    write_model(tmp_path, "m", "import no_such_module_at_all\n")
    with pytest.raises(ModelLoadError, match="No module named 'no_such_module_at_all'"):
        BACKEND.auto_complete(_model(tmp_path, "m"), parse_config(CONFIG, "m"), tmp_path / "m" / "1")


def test_placements_helper_names():
    assert [p.name for p in placements("m", 2)] == ["m_0_0", "m_0_1"]
