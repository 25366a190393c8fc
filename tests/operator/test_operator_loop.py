"""The whole loop with no cluster: apply, compile, push, serve, status.

The real operator (a subprocess running kopf) watches kmock's Kubernetes emulator; two real proxy
processes serve on loopback and forward to the provider simulator.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import test_utils

from modelyard_routing.push import GENERATION_ANNOTATION
from modelyard_simulator import RequestLog
from tests.operator.cluster import (
    API_KEY,
    PROXY_NAMESPACE,
    TABLE_SECRET,
    Cluster,
    OperatorProcess,
    ProxyProcess,
    eventually,
)

pytestmark = pytest.mark.timeout(90)


def secret(name: str, values: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": labels or {}},
        "stringData": values,
    }


def credential(name: str, base_url: str, secret_name: str = "provider-keys", key: str = "openai") -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ProviderCredential",
        "metadata": {"name": name},
        "spec": {"provider": "openai", "baseURL": base_url, "secretRef": {"name": secret_name, "key": key}},
    }


def route(name: str, model: str, credential_name: str = "sim-openai") -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": name},
        "spec": {
            "model": model,
            "targets": [{"credentialRef": {"name": credential_name}, "model": "gpt-4o-2024-08-06"}],
        },
    }


async def apply_basics(cluster: Cluster, simulator: test_utils.TestServer) -> None:
    """Gateway keys, a provider key, a credential for the simulator, and one route."""
    await cluster.apply(secret("gateway-keys", {"test": API_KEY}, {"modelyard.io/api-keys": "true"}))
    await cluster.apply(secret("provider-keys", {"openai": "sk-upstream-1"}))
    await cluster.apply(credential("sim-openai", str(simulator.make_url("/v1"))))
    await cluster.apply(route("gpt", "gpt-4o"))


def programmed(cluster: Cluster, name: str, replicas: str = "2/2") -> bool:
    status = cluster.status("ModelRoute", name)
    return (
        cluster.condition("ModelRoute", name, "Programmed").get("status") == "True"
        and status.get("programmedReplicas") == replicas
    )


async def serving_everywhere(proxies: list[ProxyProcess], model: str) -> bool:
    return all([model in await proxy.models() for proxy in proxies])


def upstream_keys(log: RequestLog) -> list[str | None]:
    return [item.header("authorization") for item in log]


async def test_applied_route_is_served_by_every_proxy_and_reported_programmed(
    cluster: Cluster,
    proxies: list[ProxyProcess],
    operator: OperatorProcess,
    simulator: test_utils.TestServer,
) -> None:
    await apply_basics(cluster, simulator)

    await eventually(lambda: programmed(cluster, "gpt"), what="ModelRoute gpt Programmed=True with 2/2")
    assert await serving_everywhere(proxies, "gpt-4o")
    for proxy in proxies:
        code, body = await proxy.chat("gpt-4o")
        assert code == 200, body
    status = cluster.status("ModelRoute", "gpt")
    assert status["observedGeneration"] == 1
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Accepted": "True",
        "ResolvedRefs": "True",
        "Programmed": "True",
    }
    served = await proxies[0].served()
    assert (status["tableGeneration"], status["tableHash"]) == (served["generation"], served["sha256"])
    assert cluster.condition("ProviderCredential", "sim-openai", "ResolvedRefs")["status"] == "True"
    table_secret = cluster.get("Secret", PROXY_NAMESPACE, TABLE_SECRET)
    assert table_secret is not None
    assert table_secret["metadata"]["annotations"][GENERATION_ANNOTATION] == str(served["generation"])
    assert "sk-upstream-1" not in str(cluster.status("ProviderCredential", "sim-openai"))


async def test_broken_reference_is_reported_and_the_proxies_keep_the_last_good_route(
    cluster: Cluster,
    proxies: list[ProxyProcess],
    operator: OperatorProcess,
    simulator: test_utils.TestServer,
) -> None:
    await apply_basics(cluster, simulator)
    await eventually(lambda: programmed(cluster, "gpt"), what="gpt programmed")
    generation = (await proxies[0].served())["generation"]

    await cluster.apply(credential("sim-openai", str(simulator.make_url("/v1")), key="no-such-key"))

    def broken() -> bool:
        return cluster.condition("ModelRoute", "gpt", "ResolvedRefs").get("status") == "False"

    await eventually(broken, what="ResolvedRefs=False on the route")
    credential_refs = cluster.condition("ProviderCredential", "sim-openai", "ResolvedRefs")
    assert credential_refs["reason"] == "SecretKeyNotFound"
    assert "no-such-key" in credential_refs["message"]
    await eventually(
        lambda: cluster.condition("ModelRoute", "gpt", "Programmed").get("reason") == "LastGoodServed",
        what="Programmed says the last good version is served",
    )
    assert any(e["reason"] == "SecretKeyNotFound" and e["type"] == "Warning" for e in cluster.events("sim-openai"))
    for proxy in proxies:
        assert (await proxy.served())["generation"] == generation
        status, body = await proxy.chat("gpt-4o")
        assert status == 200, body

    await cluster.apply(credential("sim-openai", str(simulator.make_url("/v1"))))
    await eventually(lambda: programmed(cluster, "gpt"), what="gpt programmed again once the reference resolves")


async def test_rotated_secret_reaches_every_proxy_without_a_restart(
    cluster: Cluster,
    proxies: list[ProxyProcess],
    operator: OperatorProcess,
    simulator: test_utils.TestServer,
    upstream_log: RequestLog,
) -> None:
    await apply_basics(cluster, simulator)
    await eventually(lambda: programmed(cluster, "gpt"), what="gpt programmed")

    await cluster.apply(secret("provider-keys", {"openai": "sk-upstream-2"}))

    async def rotated() -> bool:
        upstream_log.clear()
        results = [await proxy.chat("gpt-4o") for proxy in proxies]
        return all(status == 200 for status, _ in results) and set(upstream_keys(upstream_log)) == {
            "Bearer sk-upstream-2"
        }

    await eventually(rotated, within=10, what="every proxy to call upstream with the rotated key")
    assert all(proxy.running for proxy in proxies)
    await eventually(lambda: programmed(cluster, "gpt"), what="gpt programmed with the new key")


async def test_restarted_proxy_is_programmed_again(
    cluster: Cluster,
    proxies: list[ProxyProcess],
    operator: OperatorProcess,
    simulator: test_utils.TestServer,
) -> None:
    await apply_basics(cluster, simulator)
    await eventually(lambda: programmed(cluster, "gpt"), what="gpt programmed")
    crashed = proxies[1]

    # The pod dies; its EndpointSlice still says ready (probes have not noticed yet), so pushes fail.
    await crashed.stop()
    await cluster.apply(route("gpt-mini", "gpt-4o-mini"))
    await eventually(
        lambda: cluster.status("ModelRoute", "gpt-mini").get("programmedReplicas") == "1/2",
        what="gpt-mini on 1/2 while a proxy is down",
    )
    pending = cluster.condition("ModelRoute", "gpt-mini", "Programmed")
    assert pending["status"] == "False"
    assert crashed.name in pending["message"]

    # It comes back with an empty mount (a new pod before the kubelet synced): the resync re-pushes.
    crashed.table.unlink(missing_ok=True)
    await crashed.start()
    await eventually(lambda: programmed(cluster, "gpt-mini"), what="gpt-mini programmed on both proxies again")
    assert await serving_everywhere(proxies, "gpt-4o-mini")


async def test_traffic_continues_without_the_operator_and_new_pods_start_from_the_secret(
    cluster: Cluster,
    proxies: list[ProxyProcess],
    operator: OperatorProcess,
    simulator: test_utils.TestServer,
    tmp_path: Path,
) -> None:
    await apply_basics(cluster, simulator)
    await eventually(lambda: programmed(cluster, "gpt"), what="gpt programmed")
    generation = (await proxies[0].served())["generation"]

    await operator.stop()
    for proxy in proxies:
        status, body = await proxy.chat("gpt-4o")
        assert status == 200, body

    newcomer = ProxyProcess("proxy-c", tmp_path)
    cluster.mount_table(newcomer.table)
    await newcomer.start()
    try:
        assert (await newcomer.served())["generation"] == generation
        status, body = await newcomer.chat("gpt-4o")
        assert status == 200, body

        # The operator comes back: same content, so the same generation; the newcomer joins the rollout.
        await operator.start()
        await cluster.add_proxy_endpoint(newcomer)
        await eventually(lambda: programmed(cluster, "gpt", "3/3"), what="gpt programmed on 3/3")
        assert (await proxies[0].served())["generation"] == generation
    finally:
        await newcomer.stop()


async def test_duplicate_model_name_is_refused_on_the_later_route(
    cluster: Cluster,
    proxies: list[ProxyProcess],
    operator: OperatorProcess,
    simulator: test_utils.TestServer,
) -> None:
    await apply_basics(cluster, simulator)
    await cluster.apply(route("gpt-copy", "gpt-4o"))

    def refused() -> bool:
        return cluster.condition("ModelRoute", "gpt-copy", "Accepted").get("reason") == "DuplicateModelName"

    await eventually(refused, what="the later route refused")
    accepted = cluster.condition("ModelRoute", "gpt-copy", "Accepted")
    assert "ModelRoute default/gpt" in accepted["message"]
    await eventually(lambda: programmed(cluster, "gpt"), what="the earlier route programmed")
    assert cluster.condition("ModelRoute", "gpt-copy", "Programmed")["reason"] == "NotAccepted"
    # No proxy serves it, whatever the number of replicas.
    refused_status = cluster.status("ModelRoute", "gpt-copy")
    assert refused_status["programmedReplicas"] == "0/2"
    assert refused_status.get("tableGeneration") is None


async def test_routes_outside_the_watched_namespaces_are_left_alone(
    cluster: Cluster,
    proxies: list[ProxyProcess],
    operator: OperatorProcess,
    simulator: test_utils.TestServer,
) -> None:
    await apply_basics(cluster, simulator)
    foreign = route("elsewhere", "other-model")
    foreign["metadata"]["namespace"] = "team-b"
    await cluster.apply(foreign)
    await eventually(lambda: programmed(cluster, "gpt"), what="gpt programmed")
    await asyncio.sleep(0.5)
    assert cluster.status("ModelRoute", "elsewhere", "team-b") == {}
    assert not any([("other-model" in await proxy.models()) for proxy in proxies])


async def test_a_new_pod_gets_the_table_before_it_is_ready_and_counts_once_ready(
    cluster: Cluster,
    proxies: list[ProxyProcess],
    operator: OperatorProcess,
    simulator: test_utils.TestServer,
    tmp_path: Path,
) -> None:
    await apply_basics(cluster, simulator)
    await eventually(lambda: programmed(cluster, "gpt"), what="gpt programmed")

    # No mounted table yet, so its readiness probe fails: the push is what makes it ready.
    newcomer = ProxyProcess("proxy-c", tmp_path)
    await newcomer.start()
    try:
        await cluster.add_proxy_endpoint(newcomer, ready=False)
        await eventually(lambda: serving_everywhere([newcomer], "gpt-4o"), what="the not-ready pod to get the table")
        assert cluster.status("ModelRoute", "gpt")["programmedReplicas"] == "2/2"

        await cluster.add_proxy_endpoint(newcomer, ready=True)
        await eventually(lambda: programmed(cluster, "gpt", "3/3"), what="gpt programmed on 3/3")
    finally:
        await newcomer.stop()


@pytest.fixture
async def gpt_programmed(
    cluster: Cluster, proxies: list[ProxyProcess], operator: OperatorProcess, simulator: test_utils.TestServer
) -> None:
    """The basics applied, and route gpt programmed on both proxies."""
    await apply_basics(cluster, simulator)
    await eventually(lambda: programmed(cluster, "gpt"), what="gpt programmed")


async def test_a_killed_proxy_stops_counting_within_a_resync(
    cluster: Cluster, proxies: list[ProxyProcess], gpt_programmed: None
) -> None:
    killed = proxies[1]

    # Nothing changes but the pod's death: its EndpointSlice still says ready, no route is edited.
    await killed.stop(signal.SIGKILL)

    def unreachable() -> bool:
        return cluster.condition("ModelRoute", "gpt", "Programmed").get("reason") == "Unreachable"

    await eventually(unreachable, within=5, what="Programmed=False Unreachable within a resync (1 s here)")
    condition = cluster.condition("ModelRoute", "gpt", "Programmed")
    assert condition["status"] == "False"
    assert f"{killed.name}: unreachable" in condition["message"]
    assert cluster.status("ModelRoute", "gpt")["programmedReplicas"] == "1/2"
    # The Event is posted beside the status write, not before it: wait for it as a client of the API would.
    await eventually(
        lambda: any(e["reason"] == "Unreachable" and e["type"] == "Warning" for e in cluster.events("gpt")),
        within=5,
        what="a Warning Event naming the unreachable pod",
    )

    await killed.start()
    await eventually(lambda: programmed(cluster, "gpt"), what="gpt programmed again once the pod answers")


async def test_a_change_to_one_route_rewrites_only_that_routes_status(
    cluster: Cluster, proxies: list[ProxyProcess], gpt_programmed: None
) -> None:
    others = [f"team-{n}" for n in range(12)]
    for name in others:
        await cluster.apply(route(name, f"model-{name}"))
    await eventually(lambda: all(programmed(cluster, name) for name in ["gpt", *others]), what="every route programmed")
    await asyncio.sleep(1.5)  # a resync (1 s here): whatever was still due is written
    before = cluster.status("ModelRoute", "gpt")
    patched_before = len(cluster.status_patches("ModelRoute"))

    await cluster.apply(route("extra", "extra-model"))
    await eventually(lambda: programmed(cluster, "extra"), what="the new route programmed")
    await asyncio.sleep(1.5)  # and one more resync, which must not rewrite anything either

    assert set(cluster.status_patches("ModelRoute")[patched_before:]) == {"extra"}
    assert cluster.status("ModelRoute", "gpt") == before
    newest = cluster.status("ModelRoute", "extra")["tableGeneration"]
    assert newest > before["tableGeneration"]
    served = await proxies[0].served()
    assert (served["generation"], served["sha256"]) == (newest, cluster.status("ModelRoute", "extra")["tableHash"])
    # The unchanged route names the generation its pods are counted on, not the newest one.
    message = cluster.condition("ModelRoute", "gpt", "Programmed")["message"]
    assert message.startswith("2/2 ready proxy replicas")
    assert f"from table generation {before['tableGeneration']})" in message


async def test_a_restarted_operator_goes_on_naming_the_same_generations_and_rewrites_no_status(
    cluster: Cluster, operator: OperatorProcess, gpt_programmed: None
) -> None:
    await cluster.apply(route("later", "later-model"))
    await eventually(lambda: programmed(cluster, "later"), what="the later route programmed")
    await asyncio.sleep(1.5)  # a resync (1 s here): every status settled
    before = {name: cluster.status("ModelRoute", name) for name in ("gpt", "later")}
    assert before["gpt"]["tableGeneration"] < before["later"]["tableGeneration"]

    await operator.stop()
    patched = len(cluster.status_patches("ModelRoute"))
    await operator.start()
    await eventually(lambda: _answers(operator, "/readyz", 200), what="the restarted operator ready")
    await asyncio.sleep(1.5)

    assert cluster.status_patches("ModelRoute")[patched:] == []
    assert {name: cluster.status("ModelRoute", name) for name in before} == before


async def test_probes_say_alive_at_once_and_ready_after_the_first_reconcile(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    await eventually(lambda: _answers(operator, "/healthz", 200), what="/healthz to answer 200")
    # Nothing in the cluster yet, so nothing has been reconciled.
    status, body = await operator.probe("/readyz")
    assert status == 503, body
    assert body["reason"] == "the first reconcile has not finished"

    await cluster.apply(secret("gateway-keys", {"test": API_KEY}, {"modelyard.io/api-keys": "true"}))
    await eventually(lambda: _answers(operator, "/readyz", 200), what="/readyz to answer 200")
    status, body = await operator.probe("/healthz")
    assert status == 200, body
    assert body["tableGeneration"] >= 1
    assert cluster.get("Secret", PROXY_NAMESPACE, TABLE_SECRET) is not None


async def _answers(operator: OperatorProcess, path: str, expected: int) -> bool:
    return (await operator.probe(path))[0] == expected
