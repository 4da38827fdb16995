"""PyTriton's ``RemoteTriton`` (issue 11): pytriton_lite has no remote mode, so it refuses at construction with a
typed error that says why and what to do, instead of appearing to bind models nobody can reach."""

from __future__ import annotations

import pytest

from pytriton_lite.exceptions import PyTritonInvalidOperationError
from pytriton_lite.proxy.remote import RemoteTritonNotSupportedError
from pytriton_lite.testing import running_triton
from pytriton_lite.triton import RemoteTriton


def test_remote_triton_is_refused_with_a_typed_error_even_when_a_server_is_listening():
    with running_triton() as triton:
        with pytest.raises(RemoteTritonNotSupportedError) as raised:
            RemoteTriton(url=triton.http_url, access_token="t")
    assert isinstance(raised.value, PyTritonInvalidOperationError)
    message = str(raised.value)
    assert "not supported by pytriton_lite" in message and triton.http_url in message
    assert "bind()" in message and "--model-repository" in message


def test_remote_triton_keeps_pytritons_signature():
    with pytest.raises(RemoteTritonNotSupportedError):
        RemoteTriton("localhost")
    with pytest.raises(TypeError):
        RemoteTriton()
