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


# --- API keys and constant-time comparison ------------------------------------------------------------------


def test_same_secret():
    assert access.same_secret("s3cret", "s3cret")
    assert not access.same_secret("s3cre", "s3cret") and not access.same_secret(None, "s3cret")
    assert not access.same_secret("", "s3cret")


def test_api_key_verdicts():
    keys = access.ApiKeys(["k1", "k2"], header="X-Key")
    assert keys.header == "x-key" and keys.guards("inference") and not keys.guards("health")
    assert keys.guards("metadata") and not keys.guards("metrics")
    ok, missing, wrong = access.KeyVerdict.OK, access.KeyVerdict.MISSING, access.KeyVerdict.WRONG
    assert keys.verdict([]) is missing
    assert keys.verdict([("authorization", "Basic Zm9v")]) is missing  # not a bearer credential
    assert keys.verdict([("authorization", "Bearer ")]) is missing
    assert keys.verdict([("x-api-key", "k1")]) is missing  # not this server's header
    assert keys.verdict([("authorization", "Bearer k1")]) is ok
    assert keys.verdict([("authorization", "BEARER   k2 ")]) is ok
    assert keys.verdict([("x-key", "k2")]) is ok
    assert keys.verdict([("x-key", "k3")]) is wrong
    assert keys.verdict([("x-key", "k3"), ("authorization", "Bearer k1")]) is ok
    assert "k1" not in repr(keys) and "2 key(s)" in repr(keys)
    with pytest.raises(AttributeError):
        keys.header = "other"  # type: ignore[misc]


def test_api_key_groups_may_name_health_and_metrics_only_besides_triton_groups():
    assert access.ApiKeys(["k"], groups=["health", "metrics"]).groups == {"health", "metrics"}
    assert access.ApiKeys(["k"], groups="inference").groups == {"inference"}
    assert set(access.DEFAULT_API_KEY_GROUPS) == config.VALID_TRITON_ENDPOINTS - {"health"}
    with pytest.raises(PyTritonError, match="Invalid api_key_groups: bogus"):
        access.ApiKeys(["k"], groups=["bogus"])
    with pytest.raises(PyTritonError, match="at least one key"):
        access.ApiKeys([])


def test_check_api_key_raises_401_with_www_authenticate_or_403():
    keys = access.ApiKeys(["k"])
    with pytest.raises(access.ApiKeyMissing) as missing:
        access.check_api_key(keys, [])
    assert missing.value.http_status == 401 and missing.value.grpc_code == "UNAUTHENTICATED"
    assert missing.value.headers == (("www-authenticate", access.WWW_AUTHENTICATE),)
    with pytest.raises(access.ApiKeyWrong) as wrong:
        access.check_api_key(keys, [("authorization", "Bearer nope")])
    assert (wrong.value.http_status, wrong.value.grpc_code, str(wrong.value)) == (
        403,
        "PERMISSION_DENIED",
        "Invalid API key",
    )
    access.check_api_key(keys, [("authorization", "Bearer k")])


def test_grpc_gate_checks_the_key_then_the_restricted_rule():
    policy = access.parse_grpc_restricted_protocol("statistics:tok=t")
    keys = access.ApiKeys(["k"], groups=["statistics", "inference"])
    assert access.GrpcGate.of(policy, "health", keys) is None  # nothing to check there
    gate = access.GrpcGate.of(policy, "statistics", keys)
    assert gate is not None
    assert gate.refusal([])[:2] == ("UNAUTHENTICATED", keys.missing_message())
    assert gate.refusal([("x-api-key", "k")])[0] == "UNAVAILABLE"
    assert gate.refusal([("x-api-key", "k"), ("triton-grpc-protocol-tok", "t")]) is None
    assert gate.refusal([("x-api-key", b"k"), ("triton-grpc-protocol-tok", "t")])[0] == "UNAUTHENTICATED"  # -bin


def test_read_api_keys_from_every_source(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_ACCESS_KEYS", "e1,e2 e3\ne1")
    path = tmp_path / "keys"
    path.write_text("# comment\nf1\n\n f2 \n")
    assert access.read_api_keys(["a"], "TEST_ACCESS_KEYS", path) == ("a", "e1", "e2", "e3", "f1", "f2")
    assert access.read_api_keys("single") == ("single",)
    assert access.read_api_keys() == ()
