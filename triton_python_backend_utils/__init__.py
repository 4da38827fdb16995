"""``import triton_python_backend_utils as pb_utils``: Triton's python-backend utilities for a ``model.py``
served by pytriton_lite, in-process (the implementation is ``pytriton_lite.pb_utils``)."""

from pytriton_lite.pb_utils import *  # noqa: F403
from pytriton_lite.pb_utils import __all__ as __all__
