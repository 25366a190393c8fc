"""The operator's consumer parts on their own: summaries, usage in status, key sources, generations, trust,
and reading usage from proxies over real sockets."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from modelyard.cli import build_parser
from modelyard_operator import inventory, tables
from modelyard_operator.consumer_status import budget_summary, limits_summary, models_summary, usage_fields
from modelyard_operator.context import OperatorContext
from modelyard_operator.debounce import Debouncer
from modelyard_operator.discovery import ProxyEndpoint
from modelyard_operator.handlers import watching
from modelyard_operator.kube import KubeClient
from modelyard_operator.settings import OperatorSettings
from modelyard_operator.usage import UsageReader
from modelyard_routing import Inventory, Manifest, ObjectRef, SecretData, hash_api_key
from modelyard_routing.consumer_spec import BudgetPeriod, ModelConsumerSpec
from modelyard_routing.push import AdminToken
from modelyard_routing.usage import ADMIN_USAGE_PATH, ConsumerUsage, DayUsage, PeriodUsage, UsageReport
from tests.harness import start_server

# --- summaries for kubectl get ------------------------------------------------------------------------------


def spec(**fields: Any) -> ModelConsumerSpec:
    return ModelConsumerSpec.model_validate({"keys": {"secretRefs": [{"name": "keys"}]}, "models": ["*"], **fields})


def test_summaries_say_models_limits_and_budgets_in_one_line_each() -> None:
    full = spec(
        models=["gpt-4o-mini", "claude-*"],
        limits={"requestsPerMinute": 60, "tokensPerMinute": 100000, "concurrentRequests": 4},
        budgets=[{"period": "month", "usd": 1000}, {"period": "hour", "usd": 2.5}, {"period": "day", "usd": 50}],
    )
    assert models_summary(full) == "gpt-4o-mini,claude-*"
    assert limits_summary(full) == "60rpm 100000tpm 4conc"
    assert budget_summary(full) == "$2.50/hour $50/day $1000/month"
    bare = spec(limits={"tokensPerMinute": 5000})
    assert (limits_summary(bare), budget_summary(bare), limits_summary(spec())) == ("5000tpm", "none", "unlimited")


def test_a_long_model_list_is_cut_and_says_how_many_more() -> None:
    many = spec(models=[f"model-number-{n:02d}" for n in range(20)])
    summary = models_summary(many)
    assert len(summary) <= 110
    shown = summary.split(",")
    assert shown[:-1] == [f"model-number-{n:02d}" for n in range(len(shown) - 1)]
    assert shown[-1] == f"+{20 - (len(shown) - 1)}"


# --- usage in status ----------------------------------------------------------------------------------------


def period(name: BudgetPeriod, spent: float, budget: float | None = None) -> PeriodUsage:
    remaining = None if budget is None else budget - spent
    return PeriodUsage(
        period=name, budget_usd=budget, spent_usd=spent, held_usd=0, remaining_usd=remaining, resets_at="T-reset"
    )


def test_usage_names_the_largest_period_spend_and_leaves_out_what_has_no_budget() -> None:
    usage = ConsumerUsage(
        name="team-a/alpha", periods=(period(BudgetPeriod.MONTH, 12.345, 100), period(BudgetPeriod.DAY, 1.5))
    )
    fields = usage_fields(usage, "T1", {})
    assert fields["spentUSD"] == "$12.35"
    assert fields["usage"] == {
        "periods": [
            {"period": "day", "spentUSD": 1.5, "resetsAt": "T-reset"},
            {"period": "month", "budgetUSD": 100, "spentUSD": 12.345, "remainingUSD": 87.655, "resetsAt": "T-reset"},
        ],
        "today": {"requests": 0, "inputTokens": 0, "outputTokens": 0},
        "updatedAt": "T1",
    }


def test_usage_counts_the_tokens_of_the_report_day_over_every_model() -> None:
    days = (
        DayUsage(day="2026-12-06", model="a", requests=2, input_tokens=10, output_tokens=4, cost_usd=0.1),
        DayUsage(day="2026-12-06", model="b", requests=1, input_tokens=5, output_tokens=1, cost_usd=0.1),
        DayUsage(day="2026-12-05", model="a", requests=9, input_tokens=99, output_tokens=99, cost_usd=1.0),
    )
    usage = ConsumerUsage(name="team-a/alpha", periods=(period(BudgetPeriod.DAY, 0.2),), days=days)
    written = usage_fields(usage, "2026-12-06T10:00:00Z", {})
    assert written["usage"]["today"] == {"requests": 3, "inputTokens": 15, "outputTokens": 5}
    more = usage.model_copy(update={"days": (*days[:1], days[1].model_copy(update={"output_tokens": 2}), days[2])})
    assert usage_fields(more, "2026-12-06T10:01:00Z", written)["usage"]["updatedAt"] == "2026-12-06T10:01:00Z"


def test_updated_at_moves_only_when_the_figures_do() -> None:
    first = ConsumerUsage(name="team-a/alpha", periods=(period(BudgetPeriod.DAY, 1.5, 10),))
    written = usage_fields(first, "T1", {})
    assert usage_fields(first, "T2", written) == written
    more = ConsumerUsage(name="team-a/alpha", periods=(period(BudgetPeriod.DAY, 2.0, 10),))
    assert usage_fields(more, "T2", written)["usage"]["updatedAt"] == "T2"


# --- key sources --------------------------------------------------------------------------------------------


def secret_body(namespace: str, name: str, labels: dict[str, str], value: str = "sk-1") -> dict[str, Any]:
    metadata = {"name": name, "namespace": namespace, "labels": labels}
    return {"metadata": metadata, "data": {"key": base64.b64encode(value.encode()).decode()}}


def observed_consumer(namespace: str, name: str, keys: Any) -> inventory.Observed:
    body = {"metadata": {"name": name, "namespace": namespace}, "spec": {"keys": keys, "models": ["*"]}}
    return inventory.observe("ModelConsumer", body)


def test_secret_records_carry_labels_and_ignore_the_api_keys_label_where_only_consumers_read() -> None:
    body = secret_body("team-a", "keys", {"modelyard.io/api-keys": "true", "team": "a"})
    record = inventory.secret_values(body)
    assert (record.is_api_keys, dict(record.labels)) == (True, {"modelyard.io/api-keys": "true", "team": "a"})
    assert inventory.secret_values(body, api_keys_allowed=False).is_api_keys is False


def test_consumers_use_secrets_by_name_or_labels_in_their_own_trusted_namespace_only() -> None:
    secrets = [
        inventory.secret_values(secret_body("team-a", "named", {})),
        inventory.secret_values(secret_body("team-a", "labelled", {"team": "a", "extra": "x"})),
        inventory.secret_values(secret_body("team-a", "other", {"team": "b"})),
        inventory.secret_values(secret_body("team-b", "named", {"team": "a"})),  # another namespace
        inventory.secret_values(secret_body("default", "sneaky", {})),
    ]
    consumers = [
        observed_consumer("team-a", "alpha", {"secretRefs": [{"name": "named"}], "matchLabels": {"team": "a"}}),
        observed_consumer("default", "untrusted", {"secretRefs": [{"name": "sneaky"}]}),
        observed_consumer("team-a", "broken", "not a mapping"),  # an invalid spec selects nothing
    ]
    used = inventory.consumer_secrets(consumers, secrets, lambda namespace: namespace.startswith("team-"))
    assert used == {("team-a", "named"), ("team-a", "labelled")}
    sources = inventory.key_sources({"spec": {"keys": {"secretRefs": [{"name": "named"}, {"bad": 1}]}}})
    assert sources == inventory.KeySources(frozenset({"named"}))
    assert not sources.selects("labelled", {"team": "a"})


@pytest.mark.parametrize(
    ("namespace", "name", "labels", "wakes"),
    [
        ("team-a", "named", {}, True),
        ("team-a", "any-name", {"team": "a", "more": "x"}, True),
        ("team-a", "any-name", {"team": "b"}, False),
        ("team-b", "named", {"team": "a"}, False),  # the same name and labels in a namespace with no consumer
    ],
)
def test_a_secret_a_consumer_uses_wakes_the_reconciler_and_others_do_not(
    namespace: str, name: str, labels: dict[str, str], wakes: bool
) -> None:
    context = OperatorContext(OperatorSettings(), KubeClient(), Debouncer(0.1, 0.1))
    sources = {"team-a": [inventory.KeySources(frozenset({"named"}), {"team": "a"})]}
    assert watching.secret_in_use((namespace, name), labels, {}, sources, context) is wakes


# --- generations --------------------------------------------------------------------------------------------


def consumer_inventory(key: str, route_model: str = "gpt-4o") -> Inventory:
    credential = {"provider": "openai", "secretRef": {"name": "provider", "key": "k"}}
    route = {"model": route_model, "targets": [{"credentialRef": {"name": "cred"}, "model": "gpt-4o"}]}
    return Inventory(
        routes=[Manifest(ObjectRef("ModelRoute", "default", "gpt"), route)],
        credentials=[Manifest(ObjectRef("ProviderCredential", "default", "cred"), credential)],
        consumers=[
            Manifest(
                ObjectRef("ModelConsumer", "team-a", "alpha"),
                {"keys": {"secretRefs": [{"name": "keys"}]}, "models": ["*"]},
            )
        ],
        secrets=[
            SecretData(ObjectRef("Secret", "default", "provider"), {"k": "sk-upstream"}),
            SecretData(ObjectRef("Secret", "team-a", "keys"), {"key": key}),
        ],
    )


def step(inventory_: Inventory, previous: tables.TableStep | None, trusted: tuple[str, ...]) -> tables.TableStep:
    return tables.next_table(
        inventory_,
        previous.table if previous else None,
        previous.since if previous else {},
        previous_hashes=previous.hashes if previous else None,
        previous_consumers=previous.consumer_since if previous else None,
        trusted_namespaces=trusted,
    )


def test_a_consumer_keeps_its_generation_while_others_change_and_moves_when_its_key_rotates() -> None:
    first = step(consumer_inventory("sk-1"), None, ("team-a",))
    assert first.consumer_since == {"team-a/alpha": 1}
    assert first.table.consumers[0].key_sha256 == (hash_api_key("sk-1"),)

    unrelated = step(consumer_inventory("sk-1", route_model="gpt-4o-renamed"), first, ("team-a",))
    assert unrelated.table.generation == 2
    assert unrelated.consumer_since == {"team-a/alpha": 1}
    assert unrelated.hashes[1] == first.table.sha256

    rotated = step(consumer_inventory("sk-2", route_model="gpt-4o-renamed"), unrelated, ("team-a",))
    assert rotated.consumer_since == {"team-a/alpha": 3}
    assert rotated.table.consumers[0].key_sha256 == (hash_api_key("sk-2"),)

    # Read back from the Secret, the record keeps the consumer's generation; untrusted, it is gone.
    record = tables.RouteGenerations.model_validate_json(tables.RouteGenerations.of(unrelated).model_dump_json())
    assert record.for_table(unrelated.table).consumers == {"team-a/alpha": 1}
    untrusted = step(consumer_inventory("sk-2", route_model="gpt-4o-renamed"), rotated, ("team-b",))
    assert (untrusted.table.consumers, untrusted.consumer_since) == ((), {})


# --- trusted namespaces -------------------------------------------------------------------------------------


def test_trusted_namespaces_default_to_the_operators_own_and_are_watched() -> None:
    own = OperatorSettings(watch_namespaces=("default",), namespace="modelyard-system", consumer_namespaces=())
    assert own.trusted_namespaces == ("modelyard-system",)
    assert own.trusts("modelyard-system")
    assert not own.trusts("default")
    teams = dataclasses.replace(own, consumer_namespaces=("team-a", "team-b"))
    assert not teams.trusts("modelyard-system")
    assert teams.kopf_namespaces() == ["default", "modelyard-system", "team-a", "team-b"]


def test_the_operator_command_takes_a_comma_list_of_consumer_namespaces() -> None:
    args = build_parser().parse_args(["operator", "--consumer-namespaces", "team-a, team-b,"])
    assert args.consumer_namespaces == ("team-a", "team-b")
    assert build_parser().parse_args(["operator"]).consumer_namespaces is None


def test_consumer_namespaces_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_CONSUMER_NAMESPACES", "team-a,team-b")
    monkeypatch.setenv("MODELYARD_USAGE_INTERVAL", "7")
    settings = OperatorSettings()
    assert (settings.trusted_namespaces, settings.usage_interval) == (("team-a", "team-b"), 7.0)


# --- reading usage from the proxies -------------------------------------------------------------------------

TOKEN = "usage-test-token"


def report(spent: float) -> UsageReport:
    usage = ConsumerUsage(name="team-a/alpha", periods=(period(BudgetPeriod.DAY, spent, 10),))
    return UsageReport(store="shared", store_up=True, generated_at=f"T{spent}", consumers=(usage,))


@dataclasses.dataclass
class UsagePort:
    """A proxy admin port's usage endpoint: ``report`` to the admin token, ``status`` otherwise."""

    report: UsageReport
    status: int = 200
    asked: int = 0

    async def answer(self, request: web.Request) -> web.Response:
        self.asked += 1
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.status != 200:
            return web.json_response({"error": "unavailable"}, status=self.status)
        return web.Response(body=self.report.model_dump_json(), content_type="application/json")


@pytest.fixture
async def usage_port() -> AsyncIterator[tuple[UsagePort, str]]:
    port = UsagePort(report(1.0))
    app = web.Application()
    app.router.add_get(ADMIN_USAGE_PATH, port.answer)
    server = await start_server(app)
    yield port, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_usage_is_read_from_a_ready_proxy_that_answers_and_kept_when_none_does(
    usage_port: tuple[UsagePort, str],
) -> None:
    port, url = usage_port
    changes: list[None] = []
    endpoints = [
        ProxyEndpoint("a-not-ready", url, ready=False),
        ProxyEndpoint("b-down", "http://127.0.0.1:9"),  # nothing listens on the discard port
        ProxyEndpoint("c-up", url),
    ]
    reader = UsageReader(
        AdminToken(value=TOKEN), lambda: endpoints, lambda: changes.append(None), interval=1, timeout=2
    )
    try:
        assert await reader.refresh() is True
        assert port.asked == 1  # the not-ready pod was not asked
        usage = reader.of("team-a/alpha")
        assert usage is not None
        assert usage.periods[0].spent_usd == 1.0
        assert reader.of("team-b/beta") is None
        assert len(changes) == 1

        assert await reader.refresh() is True  # the same figures: nothing to rewrite
        assert len(changes) == 1
        port.report = report(2.0)
        assert await reader.refresh() is True
        assert len(changes) == 2

        port.status = 503
        assert await reader.refresh() is False
        assert reader.report == report(2.0)  # the last report stays
        assert len(changes) == 2
    finally:
        await reader.close()
