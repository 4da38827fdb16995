"""Serving a Triton model repository in-process: scanner, config, loader, model control, one module per backend.

Above ``core`` (it registers ``core.model.Model`` versions with the data plane), below ``triton.py``. The
contract with the backends is ``repository/backend.py``. See docs/model_repository.md.
"""
