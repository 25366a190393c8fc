"""ModelConsumers compile to key hashes and grants only where trusted, and a shared key is nobody's."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard_routing import Inventory, compile_inventory, hash_api_key
from modelyard_routing.manifests import ObjectRef
from modelyard_routing.table import RoutingTable


def secret(
    name: str,
    values: dict[str, str],
    *,
    namespace: str = "teams",
    labels: dict[str, str] | None = None,
    api_keys: bool = False,
) -> dict[str, Any]:
    all_labels = dict(labels or {})
    if api_keys:
        all_labels["modelyard.io/api-keys"] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": all_labels},
        "stringData": values,
    }


def consumer(name: str, spec: dict[str, Any], *, namespace: str = "teams") -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelConsumer",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def compile_docs(*docs: dict[str, Any], trusted: set[str] | None = None) -> tuple[RoutingTable, dict[ObjectRef, Any]]:
    inventory = Inventory()
    for doc in docs:
        inventory.add_document(doc)
    result = compile_inventory(inventory, 1, trusted)
    return result.table, {ref: {c.type: c for c in conds} for ref, conds in result.conditions.items()}


def ref(name: str, namespace: str = "teams") -> ObjectRef:
    return ObjectRef("ModelConsumer", namespace, name)


SEARCH = {
    "keys": {"secretRefs": [{"name": "search-keys"}]},
    "models": ["gpt-4o-mini", "claude-*"],
    "limits": {"requestsPerMinute": 60, "tokensPerMinute": 100000, "concurrentRequests": 4},
    "budgets": [{"period": "day", "usd": 50}, {"period": "month", "usd": 1000}],
    "labels": {"team": "search"},
}


def test_a_consumer_compiles_to_hashes_limits_and_budgets() -> None:
    table, conditions = compile_docs(
        secret("search-keys", {"a": "sk-search-1", "b": "sk-search-2"}), consumer("search", SEARCH)
    )
    (compiled,) = table.consumers
    assert compiled.name == "teams/search"
    assert set(compiled.key_sha256) == {hash_api_key("sk-search-1"), hash_api_key("sk-search-2")}
    assert compiled.models == ("gpt-4o-mini", "claude-*")
    assert compiled.limits.requests_per_minute == 60
    assert [(b.period.value, b.usd) for b in compiled.budgets] == [("day", 50.0), ("month", 1000.0)]
    assert compiled.labels == {"team": "search"}
    assert conditions[ref("search")]["ResolvedRefs"].ok
    assert "sk-search" not in table.to_wire().decode()


def test_keys_are_found_by_label_selector_in_the_consumer_namespace_only() -> None:
    spec = {**SEARCH, "keys": {"matchLabels": {"team": "search"}}}
    table, _ = compile_docs(
        secret("k1", {"k": "sk-mine"}, labels={"team": "search"}),
        secret("k2", {"k": "sk-elsewhere"}, labels={"team": "search"}, namespace="other"),
        consumer("search", spec),
    )
    assert table.consumers[0].key_sha256 == (hash_api_key("sk-mine"),)


def test_an_untrusted_namespace_grants_nothing() -> None:
    table, conditions = compile_docs(
        secret("search-keys", {"a": "sk-search-1"}), consumer("search", SEARCH), trusted={"platform"}
    )
    assert table.consumers == ()
    accepted = conditions[ref("search")]["Accepted"]
    assert accepted.status == "False"
    assert accepted.reason == "UntrustedNamespace"


def test_a_key_claimed_by_two_consumers_is_refused_for_both_and_is_no_plain_key() -> None:
    other = {**SEARCH, "keys": {"secretRefs": [{"name": "ads-keys"}]}}
    table, conditions = compile_docs(
        secret("search-keys", {"a": "sk-shared", "b": "sk-search-own"}),
        secret("ads-keys", {"a": "sk-shared"}),
        secret("legacy", {"a": "sk-shared", "b": "sk-legacy"}, api_keys=True),
        consumer("search", SEARCH),
        consumer("ads", other),
    )
    assert [c.name for c in table.consumers] == ["teams/search"]
    assert table.consumers[0].key_sha256 == (hash_api_key("sk-search-own"),)
    assert table.api_key_sha256 == (hash_api_key("sk-legacy"),)
    for name, other_name in (("search", "teams/ads"), ("ads", "teams/search")):
        resolved = conditions[ref(name)]["ResolvedRefs"]
        assert resolved.status == "False"
        assert resolved.reason == "KeyConflict"
        assert other_name in resolved.message


def test_a_consumer_key_is_no_longer_an_unlimited_plain_key() -> None:
    table, _ = compile_docs(
        secret("legacy", {"a": "sk-search-1"}, api_keys=True),
        secret("search-keys", {"a": "sk-search-1"}),
        consumer("search", SEARCH),
    )
    assert table.api_key_sha256 == ()
    assert table.consumers[0].key_sha256 == (hash_api_key("sk-search-1"),)


def test_a_missing_secret_is_named_and_the_consumer_serves_nothing() -> None:
    table, conditions = compile_docs(consumer("search", SEARCH))
    assert table.consumers == ()
    resolved = conditions[ref("search")]["ResolvedRefs"]
    assert resolved.reason == "SecretNotFound"
    assert "teams/search-keys" in resolved.message


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"limits": {"requestsPerMinute": 0}}, "spec.limits.requestsPerMinute"),
        ({"budgets": [{"period": "day", "usd": 1e12}]}, "spec.budgets[0].usd"),
        ({"budgets": [{"period": "day", "usd": 1}, {"period": "day", "usd": 2}]}, "each period at most once"),
        ({"budgets": [{"period": "week", "usd": 1}]}, "spec.budgets[0].period"),
        ({"models": []}, "spec.models"),
        ({"labels": {"route": "x"}}, "reserved"),
        ({"keys": {}}, "secretRefs or matchLabels"),
    ],
)
def test_invalid_specs_are_refused_with_the_field_named(change: dict[str, Any], words: str) -> None:
    table, conditions = compile_docs(secret("search-keys", {"a": "sk-1"}), consumer("search", {**SEARCH, **change}))
    assert table.consumers == ()
    accepted = conditions[ref("search")]["Accepted"]
    assert accepted.reason == "InvalidSpec"
    assert words in accepted.message


def test_a_table_without_consumers_hashes_as_before() -> None:
    table, _ = compile_docs(secret("legacy", {"a": "sk-1"}, api_keys=True))
    assert "consumers" not in table.model_dump(mode="json")
    assert RoutingTable.from_wire(table.to_wire()) == table
