"""The ModelConsumers shipped in examples/ compile: accepted, keys resolved, each key its consumer's alone.

examples/consumers shows two teams (keys by secretRefs and by matchLabels); examples/standalone, which
``make run`` serves, adds a demo team with a tight rate and budget beside the unlimited demo key.
"""

from __future__ import annotations

from pathlib import Path

from modelyard_routing import compile_inventory, load_documents
from modelyard_routing.manifests import manifest_files
from modelyard_routing.table import Consumer, RoutingTable, hash_api_key
from tests.harness import DEMO_KEY

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def compiled(folder: Path) -> RoutingTable:
    """``folder``'s manifests compiled as standalone does; fails on any consumer condition not True."""
    inventory = load_documents(manifest_files(folder))
    result = compile_inventory(inventory, 1)
    for manifest in inventory.consumers:
        conditions = result.conditions[manifest.ref]
        assert all(c.ok for c in conditions), (manifest.ref, conditions)
    return result.table


def by_name(table: RoutingTable) -> dict[str, Consumer]:
    return {consumer.name: consumer for consumer in table.consumers}


def test_every_example_consumer_compiles() -> None:
    consumers = by_name(compiled(EXAMPLES))
    assert {"search/team-search", "ads/team-ads", "default/team-demo"} <= set(consumers)


def test_the_two_teams_get_their_own_keys_models_limits_and_budgets() -> None:
    table = compiled(EXAMPLES / "consumers")
    consumers = by_name(table)
    assert set(consumers) == {"search/team-search", "ads/team-ads"}
    search, ads = consumers["search/team-search"], consumers["ads/team-ads"]
    # secretRefs: every value of the named Secret; matchLabels: every labelled Secret of the namespace.
    assert set(search.key_sha256) == {
        hash_api_key("sk-team-search-ranker-example"),
        hash_api_key("sk-team-search-indexer-example"),
    }
    assert ads.key_sha256 == (hash_api_key("sk-team-ads-campaigns-example"),)
    assert table.api_key_sha256 == ()  # a consumer's key is never an unlimited gateway key
    assert search.models == ("eu-chat", "gpt-4o-mini", "text-embedding-*")
    assert (ads.models, ads.default_profile) == (("claude*", "gemini-2.5-flash", "eu-chat"), "extraction")
    assert (search.limits.requests_per_minute, ads.limits.concurrent_requests) == (600, 20)
    assert {b.period for b in search.budgets} == {"day", "month"}
    assert {b.period for b in ads.budgets} == {"hour", "month"}
    assert search.labels["team"] != ads.labels["team"]
    assert (ads.unpriced_models, ads.on_store_failure) == ("Refuse", "FailClosed")


def test_make_run_serves_a_limited_demo_team_beside_the_unlimited_demo_key() -> None:
    table = compiled(EXAMPLES / "standalone")
    (demo,) = table.consumers
    assert demo.name == "default/team-demo"
    assert demo.key_sha256 == (hash_api_key("sk-modelyard-team-demo"),)
    assert demo.models == ("*",)
    assert demo.limits.requests_per_minute == 5
    assert [(b.period, b.usd) for b in demo.budgets] == [("day", 1.0)]
    assert table.api_key_sha256 == (hash_api_key(DEMO_KEY),)
