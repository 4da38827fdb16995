"""protocol.access: one list of API groups, one parser for both restricted-endpoint flags."""

from __future__ import annotations

import pytest

from pytriton_lite import config
from pytriton_lite.exceptions import PyTritonError
from pytriton_lite.protocol import access


def test_groups_are_defined_once_and_still_importable_from_config():
    assert config.TRITON_API_GROUPS[0] == "health" and len(config.TRITON_API_GROUPS) == 9
    assert config.VALID_TRITON_ENDPOINTS == frozenset(config.TRITON_API_GROUPS)
    assert set(access.GRPC_METHOD_GROUPS.values()) == config.VALID_TRITON_ENDPOINTS


def test_every_grpc_rpc_has_a_group():
    from tritonclient.grpc import service_pb2

    service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert {m.name for m in service.methods} == set(access.GRPC_METHOD_GROUPS)


def test_http_spec_lists_and_semicolons():
    policy = access.parse_http_restricted_api(["model-config,statistics:My-Token=s3cret", "health:a=1; trace:b=2"])
    assert policy == {
        "model-config": ("my-token", "s3cret"),
        "statistics": ("my-token", "s3cret"),
        "health": ("a", "1"),
        "trace": ("b", "2"),
    }
    assert policy.refusal("statistics") == "This API is restricted, expecting header 'my-token'"


def test_grpc_spec_prefixes_the_header_and_keeps_colons_in_values():
    policy = access.parse_grpc_restricted_protocol(["health,inference:K=v", "statistics:other=x:=y"])
    assert policy == {
        "health": ("triton-grpc-protocol-k", "v"),
        "inference": ("triton-grpc-protocol-k", "v"),
        "statistics": ("triton-grpc-protocol-other", "x:=y"),
    }
    assert policy.refusal("health") == "This protocol is restricted, expecting header 'triton-grpc-protocol-k'"
    # the same shape as the HTTP flag: ';' joins rules
    assert access.parse_grpc_restricted_protocol("health:a=1;trace:b=2") == {
        "health": ("triton-grpc-protocol-a", "1"),
        "trace": ("triton-grpc-protocol-b", "2"),
    }


def test_http_value_may_contain_a_colon_like_grpc():
    # the groups end at the first ':' in both syntaxes (HTTP used the last one and refused this)
    assert access.parse_http_restricted_api("statistics:k=a:b") == {"statistics": ("k", "a:b")}


@pytest.mark.parametrize("spec", [None, "", [], " ; "])
def test_nothing_restricted(spec):
    for parse in (access.parse_http_restricted_api, access.parse_grpc_restricted_protocol):
        policy = parse(spec)
        assert policy == {} and not policy and policy.get("health") is None


@pytest.mark.parametrize(
    ("spec", "http_message", "grpc_message"),
    [
        (
            "statistics",
            "Invalid http restricted api specification: 'statistics'",
            "Invalid grpc restricted protocol specification: 'statistics'",
        ),
        (
            "statistics:novalue",
            "Invalid http restricted api specification: 'statistics:novalue'",
            "Invalid grpc restricted protocol specification: 'statistics:novalue'",
        ),
        (
            "statistics:=v",
            "Invalid http restricted api specification: 'statistics:=v'",
            "Invalid grpc restricted protocol specification: 'statistics:=v'",
        ),
        (
            "bogus:k=v",
            "Unknown API group 'bogus' in http restricted api 'bogus:k=v'",
            "Unknown protocol group 'bogus' in grpc restricted protocol 'bogus:k=v'",
        ),
    ],
)
def test_errors_keep_their_messages(spec, http_message, grpc_message):
    with pytest.raises(PyTritonError) as http_error:
        access.parse_http_restricted_api(spec)
    assert str(http_error.value) == http_message
    with pytest.raises(PyTritonError) as grpc_error:
        access.parse_grpc_restricted_protocol(spec)
    assert str(grpc_error.value) == grpc_message


def test_policy_is_immutable():
    policy = access.parse_http_restricted_api("health:k=v")
    with pytest.raises(AttributeError):
        policy._rules = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy["health"] = ("x", "y")  # type: ignore[index]
    assert repr(policy) == "AccessPolicy({'health': ('k', 'v')})"


def test_forward_patterns_match_case_insensitively_and_take_tritons_case_sensitive_prefix():
    from pytriton_lite.protocol.access import compile_forward_pattern

    assert compile_forward_pattern(None) is None and compile_forward_pattern("") is None
    pattern = compile_forward_pattern("X-My-.*")
    assert pattern is not None and pattern.search("x-my-header") and pattern.search("X-MY-HEADER")
    strict = compile_forward_pattern("(?-i)X-My-.*")  # RE2's case-sensitive prefix must not crash the start
    assert strict is not None and strict.search("X-My-header") and not strict.search("x-my-header")
    with pytest.raises(PyTritonError, match=r"Invalid header forward pattern '\[oops'"):
        compile_forward_pattern("[oops")
