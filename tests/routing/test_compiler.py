"""The compiler: manifests and Secrets in, a sealed table and per-object conditions out."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from modelyard_routing import Inventory, ObjectRef, compile_inventory, hash_api_key
from modelyard_routing.table import RoutingTable


def secret(name: str, values: dict[str, str], *, api_keys: bool = False, namespace: str = "default") -> dict[str, Any]:
    labels = {"modelyard.io/api-keys": "true"} if api_keys else {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    }


def credential(name: str, spec: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ProviderCredential",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def route(name: str, spec: dict[str, Any], namespace: str = "default", created: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": name, "namespace": namespace, "generation": 3, "creationTimestamp": created},
        "spec": spec,
    }


def inventory(*docs: dict[str, Any]) -> Inventory:
    inv = Inventory()
    for doc in docs:
        inv.add_document(doc, "test")
    return inv


BASE = (
    secret("keys", {"openai": "sk-live-123"}),
    secret("gateway", {"team-a": "sk-gw-a", "team-b": "sk-gw-b"}, api_keys=True),
    credential("openai", {"provider": "openai", "secretRef": {"name": "keys", "key": "openai"}}),
    route(
        "gpt",
        {
            "model": "gpt-4o",
            "aliases": ["gpt"],
            "targets": [{"credentialRef": {"name": "openai"}, "model": "gpt-4o-2024"}],
        },
    ),
)


def conditions_of(result: Any, kind: str, name: str, namespace: str = "default") -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in result.conditions[ObjectRef(kind, namespace, name)]}


def test_compiles_routes_credentials_and_key_hashes() -> None:
    result = compile_inventory(inventory(*BASE), generation=7)
    table = result.table
    assert table.generation == 7
    assert [r.model for r in table.routes] == ["gpt-4o"]
    assert table.routes[0].aliases == ("gpt",)
    assert table.routes[0].targets[0].model == "gpt-4o-2024"
    assert table.credentials[0].base_url == "https://api.openai.com/v1"
    assert table.credentials[0].api_key is not None
    assert table.credentials[0].api_key.get_secret_value() == "sk-live-123"
    assert set(table.api_key_sha256) == {hash_api_key("sk-gw-a"), hash_api_key("sk-gw-b")}
    assert conditions_of(result, "ModelRoute", "gpt") == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("True", "ResolvedRefs"),
    }
    assert result.conditions[ObjectRef("ModelRoute", "default", "gpt")][0].observed_generation == 3


def test_hash_depends_on_content_not_generation_and_covers_secrets() -> None:
    first = compile_inventory(inventory(*BASE), generation=1).table
    second = compile_inventory(inventory(*BASE), generation=2).table
    assert first.sha256 == second.sha256
    rotated = (secret("keys", {"openai": "sk-live-456"}), *BASE[1:])
    assert compile_inventory(inventory(*rotated), generation=3).table.sha256 != first.sha256


def test_secrets_are_masked_everywhere_but_the_wire_form() -> None:
    table = compile_inventory(inventory(*BASE), generation=1).table
    assert "sk-live-123" not in repr(table)
    assert "sk-live-123" not in table.model_dump_json()
    assert b"sk-live-123" in table.to_wire()
    assert RoutingTable.from_wire(table.to_wire()) == table


def test_missing_secret_key_is_reported_without_its_value() -> None:
    docs = (secret("keys", {"other": "sk-live-123"}), *BASE[1:])
    result = compile_inventory(inventory(*docs), generation=1)
    assert conditions_of(result, "ProviderCredential", "openai")["ResolvedRefs"] == ("False", "SecretKeyNotFound")
    assert conditions_of(result, "ModelRoute", "gpt")["ResolvedRefs"] == ("False", "UnresolvedRefs")
    assert result.table.routes == ()
    assert result.table.credentials == ()
    messages = " ".join(c.message for cs in result.conditions.values() for c in cs)
    assert "sk-live-123" not in messages


def test_routes_only_reference_credentials_in_their_namespace() -> None:
    docs = (*BASE[:3], route("gpt", BASE[3]["spec"], namespace="team-b"))
    result = compile_inventory(inventory(*docs), generation=1)
    status, reason = conditions_of(result, "ModelRoute", "gpt", "team-b")["ResolvedRefs"]
    assert (status, reason) == ("False", "UnresolvedRefs")
    assert "team-b/openai not found" in result.conditions[ObjectRef("ModelRoute", "team-b", "gpt")][1].message


def test_duplicate_model_name_is_refused_on_the_later_route() -> None:
    later = route(
        "gpt-copy",
        {"model": "gpt", "targets": [{"credentialRef": {"name": "openai"}, "model": "x"}]},
        created="2026-02-01T00:00:00Z",
    )
    earlier = route("gpt", BASE[3]["spec"], created="2026-01-01T00:00:00Z")
    result = compile_inventory(inventory(*BASE[:3], later, earlier), generation=1)
    assert conditions_of(result, "ModelRoute", "gpt")["Accepted"] == ("True", "Accepted")
    assert conditions_of(result, "ModelRoute", "gpt-copy")["Accepted"] == ("False", "DuplicateModelName")
    message = result.conditions[ObjectRef("ModelRoute", "default", "gpt-copy")][0].message
    assert "'gpt' is already served by ModelRoute default/gpt" in message
    assert [r.id for r in result.table.routes] == ["default/gpt"]


def test_partially_resolved_route_serves_the_targets_that_resolve() -> None:
    spec = {
        "model": "gpt-4o",
        "targets": [
            {"credentialRef": {"name": "missing"}, "model": "a"},
            {"credentialRef": {"name": "openai"}, "model": "b"},
        ],
    }
    result = compile_inventory(inventory(*BASE[:3], route("gpt", spec)), generation=1)
    assert conditions_of(result, "ModelRoute", "gpt")["ResolvedRefs"] == ("False", "PartiallyResolved")
    assert [t.model for t in result.table.routes[0].targets] == ["b"]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"model": "m", "targets": []}, "spec.targets: List should have at least 1 item"),
        (
            {"model": "m", "targets": [{"credentialRef": {"name": "openai"}, "model": "x", "weight": -1}]},
            "spec.targets[0].weight",
        ),
        (
            {"model": "m", "aliases": ["m"], "targets": [{"credentialRef": {"name": "openai"}, "model": "x"}]},
            "distinct",
        ),
        ({"model": "m", "bogus": 1, "targets": [{"credentialRef": {"name": "openai"}, "model": "x"}]}, "spec.bogus"),
    ],
)
def test_invalid_route_spec_is_not_accepted(spec: dict[str, Any], fragment: str) -> None:
    result = compile_inventory(inventory(*BASE[:3], route("bad", spec)), generation=1)
    accepted = result.conditions[ObjectRef("ModelRoute", "default", "bad")][0]
    assert (accepted.status, accepted.reason) == ("False", "InvalidSpec")
    assert fragment in accepted.message


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"provider": "azure-openai", "secretRef": {"name": "keys"}}, "needs baseURL"),
        ({"provider": "openai", "secretRef": {"name": "keys"}, "headers": {"Authorization": "x"}}, "reserved"),
        ({"provider": "openai"}, "needs secretRef"),
        ({"provider": "nope", "secretRef": {"name": "keys"}}, "spec.provider"),
        ({"provider": "openai", "secretRef": {"name": "keys"}, "azure": {"api": "v1"}}, "azure options"),
    ],
)
def test_invalid_credential_spec_is_not_accepted(spec: dict[str, Any], fragment: str) -> None:
    result = compile_inventory(inventory(BASE[0], credential("bad", spec)), generation=1)
    accepted = result.conditions[ObjectRef("ProviderCredential", "default", "bad")][0]
    assert (accepted.status, accepted.reason) == ("False", "InvalidSpec")
    assert fragment in accepted.message


def test_keyless_openai_compatible_credential_for_in_cluster_servers() -> None:
    docs = (
        credential("vllm", {"provider": "openai-compatible", "baseURL": "http://vllm:8000/v1/"}),
        route("llama", {"model": "llama", "targets": [{"credentialRef": {"name": "vllm"}, "model": "meta/llama"}]}),
    )
    table = compile_inventory(inventory(*docs), generation=1).table
    assert table.credentials[0].api_key is None
    assert table.credentials[0].base_url == "http://vllm:8000/v1"


@pytest.mark.parametrize(
    ("retry", "retry_on"),
    [
        pytest.param(None, ("rateLimit", "serverError", "overloaded", "connectError"), id="no-retry-block"),
        pytest.param({"attempts": 3}, ("rateLimit", "serverError", "overloaded", "connectError"), id="default"),
        pytest.param({"attempts": 3, "retryOn": ["timeout", "rateLimit"]}, ("timeout", "rateLimit"), id="listed"),
        pytest.param({"attempts": 3, "retryOn": []}, (), id="none"),
    ],
)
def test_retry_on_compiles_into_the_policy_and_leaves_timeouts_out_by_default(
    retry: dict[str, Any] | None, retry_on: tuple[str, ...]
) -> None:
    spec: dict[str, Any] = {"model": "chat", "targets": [{"credentialRef": {"name": "openai"}, "model": "gpt-4o"}]}
    if retry is not None:
        spec["retry"] = retry
    table = compile_inventory(inventory(*BASE[:3], route("chat", spec)), generation=1).table
    assert table.routes[0].policy.retry_on == retry_on
