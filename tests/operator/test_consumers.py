"""ModelConsumers through the whole loop: watched, compiled with the trusted namespaces, pushed, reported.

The real operator (a subprocess running kopf) watches kmock's Kubernetes emulator and pushes to real proxy
processes; usage comes over a real socket from a small server answering the admin port's usage endpoint
with a real ``UsageReport``, standing in for a proxy whose store counted that spend.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from modelyard_routing import RoutingTable, hash_api_key
from modelyard_routing.consumer_spec import BudgetPeriod
from modelyard_routing.push import ADMIN_TABLE_PATH, TableState
from modelyard_routing.usage import ADMIN_USAGE_PATH, ConsumerUsage, PeriodUsage, UsageReport
from tests.operator.cluster import (
    ADMIN_TOKEN,
    PROXY_NAMESPACE,
    TABLE_SECRET,
    Cluster,
    OperatorProcess,
    ProxyProcess,
    eventually,
    free_port,
)

pytestmark = pytest.mark.timeout(90)

#: Consumers are trusted here; ``default`` is served for routes but not trusted, ``team-x`` is neither.
TRUSTED = ("team-a", "team-b")
ALPHA_KEY = "sk-team-a-alpha-1"


def secret(namespace: str, name: str, values: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "stringData": values,
    }


def consumer(namespace: str, name: str, keys: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelConsumer",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"keys": keys, "models": ["gpt-4o-mini", "claude-*"], **spec},
    }


def by_name(*names: str) -> dict[str, Any]:
    return {"secretRefs": [{"name": name} for name in names]}


def compiled(table: RoutingTable, name: str) -> tuple[str, ...] | None:
    """The key hashes the table gives consumer ``name``, None if it is not in the table."""
    return next((c.key_sha256 for c in table.consumers if c.name == name), None)


def condition(cluster: Cluster, namespace: str, name: str, type_: str) -> dict[str, Any]:
    return cluster.condition("ModelConsumer", name, type_, namespace)


def reason(cluster: Cluster, namespace: str, name: str, type_: str) -> str | None:
    return condition(cluster, namespace, name, type_).get("reason")


@pytest.fixture
async def operator(cluster: Cluster, tmp_path: Path) -> AsyncIterator[OperatorProcess]:
    """The operator serving routes of ``default`` and trusting consumers of team-a and team-b only."""
    process = OperatorProcess(cluster, tmp_path, "--consumer-namespaces", ",".join(TRUSTED))
    await process.start()
    yield process
    await process.stop()
    print(f"----- operator -----\n{process.output()[-20000:]}")


async def test_a_consumer_reaches_every_proxy_as_key_hashes_and_is_programmed(
    cluster: Cluster, proxies: list[ProxyProcess], operator: OperatorProcess
) -> None:
    await cluster.apply(secret("team-a", "alpha-keys", {"first": ALPHA_KEY, "empty": ""}))
    await cluster.apply(
        consumer(
            "team-a",
            "alpha",
            by_name("alpha-keys"),
            limits={"requestsPerMinute": 60, "tokensPerMinute": 100000, "concurrentRequests": 4},
            budgets=[{"period": "month", "usd": 1000}, {"period": "day", "usd": 50}],
            labels={"team": "alpha"},
        )
    )

    await eventually(
        lambda: condition(cluster, "team-a", "alpha", "Programmed").get("status") == "True",
        what="ModelConsumer team-a/alpha Programmed=True",
    )
    table = cluster.table()
    for proxy in proxies:
        assert (await proxy.served())["sha256"] == table.sha256
    [alpha] = table.consumers
    assert alpha.name == "team-a/alpha"
    assert alpha.key_sha256 == (hash_api_key(ALPHA_KEY),)  # the empty value is no key
    assert alpha.limits.requests_per_minute == 60
    assert hash_api_key(ALPHA_KEY) not in table.api_key_sha256
    assert ALPHA_KEY not in table.to_wire().decode()

    status = cluster.status("ModelConsumer", "alpha", "team-a")
    assert status["observedGeneration"] == 1
    assert {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]} == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("True", "ResolvedRefs"),
        "Programmed": ("True", "Programmed"),
    }
    assert status["conditions"][2]["message"].startswith("2/2 ready proxy replicas serve this consumer")
    assert (status["models"], status["limits"], status["budget"]) == (
        "gpt-4o-mini,claude-*",
        "60rpm 100000tpm 4conc",
        "$50/day $1000/month",
    )
    # Neither the key nor its hash is in the status, the Events or the operator's log.
    said = str(status) + str(cluster.events("alpha", "team-a")) + operator.output()
    assert ALPHA_KEY not in said
    assert hash_api_key(ALPHA_KEY) not in said


async def test_only_the_consumer_that_changed_gets_its_status_rewritten_even_across_a_restart(
    cluster: Cluster, proxies: list[ProxyProcess], operator: OperatorProcess
) -> None:
    await cluster.apply(secret("team-a", "alpha-keys", {"key": ALPHA_KEY}))
    await cluster.apply(consumer("team-a", "alpha", by_name("alpha-keys")))
    await eventually(
        lambda: condition(cluster, "team-a", "alpha", "Programmed").get("status") == "True", what="alpha programmed"
    )
    await asyncio.sleep(1.5)  # a resync (1 s here): whatever was still due is written
    before = cluster.status("ModelConsumer", "alpha", "team-a")
    patched = len(cluster.status_patches("ModelConsumer"))

    # Another team's consumer makes a new table generation; alpha's entry in it is unchanged.
    await cluster.apply(secret("team-b", "beta-keys", {"key": "sk-beta"}))
    await cluster.apply(consumer("team-b", "beta", by_name("beta-keys")))
    await eventually(
        lambda: condition(cluster, "team-b", "beta", "Programmed").get("status") == "True", what="beta programmed"
    )
    await asyncio.sleep(1.5)
    assert set(cluster.status_patches("ModelConsumer")[patched:]) == {"beta"}
    assert cluster.status("ModelConsumer", "alpha", "team-a") == before
    assert "(from table generation 1)" in condition(cluster, "team-a", "alpha", "Programmed")["message"]

    # A restarted operator names the same generations: it rewrites no consumer's status.
    await operator.stop()
    patched = len(cluster.status_patches("ModelConsumer"))
    await operator.start()
    await eventually(lambda: _ready(operator), what="the restarted operator ready")
    await asyncio.sleep(1.5)
    assert cluster.status_patches("ModelConsumer")[patched:] == []
    assert cluster.status("ModelConsumer", "alpha", "team-a") == before


async def _ready(operator: OperatorProcess) -> bool:
    return (await operator.probe("/readyz"))[0] == 200


async def test_conditions_say_what_is_wrong_and_a_shared_key_is_refused_for_both(
    cluster: Cluster, proxies: list[ProxyProcess], operator: OperatorProcess
) -> None:
    shared = "sk-copied-between-teams"
    await cluster.apply(secret("team-a", "alpha-keys", {"key": shared}))
    await cluster.apply(secret("team-b", "beta-keys", {"key": shared, "own": "sk-beta-own"}))
    await cluster.apply(secret("team-b", "only-in-b", {"key": "sk-in-b"}))
    await cluster.apply(consumer("team-a", "alpha", by_name("alpha-keys")))
    await cluster.apply(consumer("team-b", "beta", by_name("beta-keys")))
    # A Secret of another namespace is not found: a consumer reads only its own namespace.
    await cluster.apply(consumer("team-a", "elsewhere", by_name("only-in-b")))
    await cluster.apply(consumer("team-a", "invalid", by_name("alpha-keys"), limits={"requestsPerMinute": 0}))

    await eventually(lambda: reason(cluster, "team-a", "invalid", "Accepted") == "InvalidSpec", what="InvalidSpec")
    await eventually(lambda: reason(cluster, "team-a", "alpha", "ResolvedRefs") == "KeyConflict", what="conflict")
    await eventually(lambda: reason(cluster, "team-b", "beta", "ResolvedRefs") == "KeyConflict", what="conflict")
    await eventually(
        lambda: reason(cluster, "team-a", "elsewhere", "ResolvedRefs") == "SecretNotFound", what="SecretNotFound"
    )
    await eventually(
        lambda: condition(cluster, "team-b", "beta", "Programmed").get("status") == "True", what="beta programmed"
    )

    assert "ModelConsumer team-b/beta" in condition(cluster, "team-a", "alpha", "ResolvedRefs")["message"]
    assert "ModelConsumer team-a/alpha" in condition(cluster, "team-b", "beta", "ResolvedRefs")["message"]
    assert "limits.requestsPerMinute" in condition(cluster, "team-a", "invalid", "Accepted")["message"]
    assert "team-a/only-in-b not found" in condition(cluster, "team-a", "elsewhere", "ResolvedRefs")["message"]
    for name, why in (("alpha", "UnresolvedRefs"), ("elsewhere", "UnresolvedRefs"), ("invalid", "NotAccepted")):
        assert (
            condition(cluster, "team-a", name, "Programmed")["status"],
            reason(cluster, "team-a", name, "Programmed"),
        ) == ("False", why)
    # The shared key is no one's; beta keeps its own; alpha, with nothing left, is not in the table.
    table = cluster.table()
    assert compiled(table, "team-b/beta") == (hash_api_key("sk-beta-own"),)
    assert [c.name for c in table.consumers] == ["team-b/beta"]
    assert hash_api_key(shared) not in table.api_key_sha256
    # An invalid spec has no summaries; a Warning Event says what is wrong.
    assert "models" not in cluster.status("ModelConsumer", "invalid", "team-a")
    await eventually(
        lambda: any(e["reason"] == "KeyConflict" and e["type"] == "Warning" for e in cluster.events("alpha", "team-a")),
        within=5,
        what="a Warning Event about the conflict",
    )
    assert shared not in str(cluster.events("alpha", "team-a")) + operator.output()


async def test_an_untrusted_consumer_grants_nothing_and_its_namespace_secrets_are_not_read(
    cluster: Cluster, proxies: list[ProxyProcess], operator: OperatorProcess
) -> None:
    # ``default`` is served (routes) but not trusted: the consumer is told, and its key grants nothing.
    await cluster.apply(secret("default", "sneaky-keys", {"key": "sk-sneaky"}))
    await cluster.apply(consumer("default", "sneaky", by_name("sneaky-keys")))
    # ``team-x`` is neither served nor trusted: its Secrets are never read, not even listed.
    await cluster.apply(secret("team-x", "x-keys", {"key": "sk-team-x"}))
    await cluster.apply(consumer("team-x", "outsider", by_name("x-keys")))
    await cluster.apply(secret("team-a", "alpha-keys", {"key": ALPHA_KEY}))
    await cluster.apply(consumer("team-a", "alpha", by_name("alpha-keys")))

    await eventually(
        lambda: reason(cluster, "default", "sneaky", "Accepted") == "UntrustedNamespace", what="UntrustedNamespace"
    )
    await eventually(
        lambda: condition(cluster, "team-a", "alpha", "Programmed").get("status") == "True", what="alpha programmed"
    )
    accepted = condition(cluster, "default", "sneaky", "Accepted")
    assert (accepted["status"], accepted["observedGeneration"]) == ("False", 1)
    assert reason(cluster, "default", "sneaky", "Programmed") == "NotAccepted"
    table = cluster.table()
    assert [c.name for c in table.consumers] == ["team-a/alpha"]
    every_hash = {h for c in table.consumers for h in c.key_sha256} | set(table.api_key_sha256)
    assert not every_hash & {hash_api_key("sk-sneaky"), hash_api_key("sk-team-x")}
    assert cluster.status("ModelConsumer", "outsider", "team-x") == {}
    assert not [path for path in cluster.reads() if "/namespaces/team-x/" in path]
    assert any("/namespaces/team-a/secrets" in path for path in cluster.reads())


async def test_rotated_and_label_selected_keys_reach_the_table(
    cluster: Cluster, proxies: list[ProxyProcess], operator: OperatorProcess
) -> None:
    team_label = {"modelyard.io/consumer": "alpha"}
    await cluster.apply(secret("team-a", "alpha-keys", {"key": ALPHA_KEY}))
    keys = {**by_name("alpha-keys"), "matchLabels": team_label}
    await cluster.apply(consumer("team-a", "alpha", keys))

    def hashes() -> set[str]:
        if cluster.get("Secret", PROXY_NAMESPACE, TABLE_SECRET) is None:
            return set()
        return set(compiled(cluster.table(), "team-a/alpha") or ())

    await eventually(lambda: hashes() == {hash_api_key(ALPHA_KEY)}, what="the named Secret's key in the table")
    # A Secret matching the labels comes along later; so does one in another namespace (which is not its own).
    await cluster.apply(secret("team-a", "alpha-extra", {"key": "sk-alpha-extra"}, team_label))
    await cluster.apply(secret("team-b", "lookalike", {"key": "sk-lookalike"}, team_label))
    await eventually(
        lambda: hashes() == {hash_api_key(ALPHA_KEY), hash_api_key("sk-alpha-extra")}, what="label-selected key"
    )

    # Rotation: a new value replaces the old one, and every proxy is brought to the table that has it.
    await cluster.apply(secret("team-a", "alpha-keys", {"key": "sk-team-a-alpha-2"}))
    await eventually(
        lambda: hashes() == {hash_api_key("sk-team-a-alpha-2"), hash_api_key("sk-alpha-extra")},
        what="the rotated key in the table",
    )
    sha = cluster.table().sha256

    async def everywhere() -> bool:
        return all([(await proxy.served())["sha256"] == sha for proxy in proxies])

    await eventually(everywhere, what="every proxy serving the rotated key")
    assert ALPHA_KEY not in operator.output()


@dataclasses.dataclass
class AdminPort:
    """A proxy's admin port on a real socket, to the admin token: it loads pushed tables and answers the usage
    endpoint with ``report`` (503 while ``usage_down``, as a proxy whose store is unreachable might)."""

    report: UsageReport
    name: str = "usage-proxy"
    port: int = dataclasses.field(default_factory=free_port)
    admin_port: int = dataclasses.field(default_factory=free_port)
    served: TableState = dataclasses.field(default_factory=lambda: TableState(generation=None, sha256=None))
    usage_down: bool = False
    asked: int = 0

    @web.middleware
    async def authorized(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {ADMIN_TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return await handler(request)

    async def load(self, request: web.Request) -> web.Response:
        table = RoutingTable.from_wire(await request.read())
        self.served = TableState(generation=table.generation, sha256=table.sha256)
        return await self.table_state(request)

    async def table_state(self, _: web.Request) -> web.Response:
        return web.Response(body=self.served.model_dump_json(), content_type="application/json")

    async def usage(self, _: web.Request) -> web.Response:
        self.asked += 1
        if self.usage_down:
            return web.json_response({"error": "store unreachable"}, status=503)
        return web.Response(body=self.report.model_dump_json(), content_type="application/json")

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        app = web.Application(middlewares=[self.authorized])
        app.router.add_get(ADMIN_TABLE_PATH, self.table_state)
        app.router.add_put(ADMIN_TABLE_PATH, self.load)
        app.router.add_get(ADMIN_USAGE_PATH, self.usage)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.admin_port).start()
            yield
        finally:
            await runner.cleanup()


def alpha_usage(spent_today: float, spent_month: float) -> UsageReport:
    def period(name: BudgetPeriod, budget: float | None, spent: float, resets: str) -> PeriodUsage:
        remaining = None if budget is None else max(budget - spent, 0.0)
        return PeriodUsage(
            period=name, budget_usd=budget, spent_usd=spent, held_usd=0.0, remaining_usd=remaining, resets_at=resets
        )

    periods = (
        period(BudgetPeriod.MONTH, 1000.0, spent_month, "2026-02-01T00:00:00Z"),
        period(BudgetPeriod.HOUR, None, 0.5, "2026-01-15T11:00:00Z"),
        period(BudgetPeriod.DAY, 50.0, spent_today, "2026-01-16T00:00:00Z"),
    )
    return UsageReport(
        store="shared",
        store_up=True,
        generated_at="2026-01-15T10:30:00Z",
        consumers=(ConsumerUsage(name="team-a/alpha", labels={"team": "alpha"}, periods=periods),),
    )


async def test_usage_read_from_a_proxy_admin_port_reaches_the_status_and_outlives_an_outage(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    proxy = AdminPort(alpha_usage(spent_today=12.5, spent_month=112.346))
    async with proxy.serving():
        await cluster.add_proxy_endpoint(proxy)
        await cluster.apply(secret("team-a", "alpha-keys", {"key": ALPHA_KEY}))
        budgets = [{"period": "day", "usd": 50}, {"period": "month", "usd": 1000}]
        await cluster.apply(consumer("team-a", "alpha", by_name("alpha-keys"), budgets=budgets))

        def status() -> dict[str, Any]:
            return cluster.status("ModelConsumer", "alpha", "team-a")

        await eventually(lambda: status().get("spentUSD") == "$112.35", what="the month's spend in status.spentUSD")
        await eventually(
            lambda: condition(cluster, "team-a", "alpha", "Programmed").get("status") == "True", what="programmed"
        )
        usage = status()["usage"]
        assert usage["updatedAt"] == "2026-01-15T10:30:00Z"
        assert usage["periods"] == [
            {"period": "hour", "spentUSD": 0.5, "resetsAt": "2026-01-15T11:00:00Z"},
            {
                "period": "day",
                "budgetUSD": 50.0,
                "spentUSD": 12.5,
                "remainingUSD": 37.5,
                "resetsAt": "2026-01-16T00:00:00Z",
            },
            {
                "period": "month",
                "budgetUSD": 1000.0,
                "spentUSD": 112.346,
                "remainingUSD": 887.654,
                "resetsAt": "2026-02-01T00:00:00Z",
            },
        ]
        assert status()["budget"] == "$50/day $1000/month"

        # Refreshes with the same figures write nothing (the interval is 0.5 s here, the resync 1 s).
        await asyncio.sleep(1.5)
        patched, asked = len(cluster.status_patches("ModelConsumer")), proxy.asked
        await asyncio.sleep(2)
        assert proxy.asked >= asked + 2
        assert cluster.status_patches("ModelConsumer")[patched:] == []

        # New spend is in the status within an interval or two.
        proxy.report = alpha_usage(spent_today=20.0, spent_month=120.0).model_copy(
            update={"generated_at": "2026-01-15T10:31:00Z"}
        )
        await eventually(lambda: status().get("spentUSD") == "$120.00", within=3, what="the new spend in status")
        before = status()

        # No proxy answers for usage: the last usage stays, and no condition moves because of it.
        proxy.usage_down, asked = True, proxy.asked
        await asyncio.sleep(2)
        assert proxy.asked >= asked + 2
        assert status() == before
