"""The operator's small parts on their own: debouncing, discovery, index records, status rules."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any

import pytest

from modelyard_operator import discovery, inventory, tables
from modelyard_operator.context import OperatorContext
from modelyard_operator.debounce import Debouncer
from modelyard_operator.kube import KubeClient
from modelyard_operator.reconciler import Indices
from modelyard_operator.settings import OperatorSettings
from modelyard_operator.status import Rollout, programmed, render_conditions, transitions
from modelyard_routing import Condition, ObjectRef
from tests.harness import example_inventory

# --- debouncing ---------------------------------------------------------------------------------------------


@pytest.mark.looptime
async def test_a_burst_settles_once_after_the_quiet_period() -> None:
    debouncer = Debouncer(delay=0.5, max_delay=10)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def burst() -> None:
        for _ in range(5):
            debouncer.request()
            await asyncio.sleep(0.2)

    task = asyncio.create_task(burst())
    assert await debouncer.wait() is True
    assert loop.time() - start == pytest.approx(0.8 + 0.5)
    await task
    assert not debouncer.pending


@pytest.mark.looptime
async def test_a_never_ending_stream_still_settles_after_the_longest_delay() -> None:
    debouncer = Debouncer(delay=0.5, max_delay=2)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def stream() -> None:
        while True:
            debouncer.request()
            await asyncio.sleep(0.1)

    task = asyncio.create_task(stream())
    try:
        assert await debouncer.wait() is True
        assert loop.time() - start == pytest.approx(2, abs=0.11)
    finally:
        task.cancel()


@pytest.mark.looptime
async def test_waiting_with_no_change_gives_up_after_the_timeout() -> None:
    debouncer = Debouncer(delay=0.5, max_delay=2)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await debouncer.wait(give_up_after=3) is False
    assert loop.time() - start == pytest.approx(3)


# --- discovery ----------------------------------------------------------------------------------------------


def endpoint_slice(*endpoints: dict[str, object], port_name: str = "admin") -> dict[str, object]:
    return {"ports": [{"name": "http", "port": 8080}, {"name": port_name, "port": 8081}], "endpoints": list(endpoints)}


def test_live_endpoints_are_addressed_at_the_named_admin_port() -> None:
    found = discovery.proxy_endpoints(
        endpoint_slice(
            {"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "targetRef": {"name": "proxy-1"}},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": False}, "targetRef": {"name": "proxy-2"}},
            {"addresses": ["10.0.0.5"], "conditions": {"ready": False, "terminating": True}},
            {"addresses": ["fd00::3"], "targetRef": {"name": "proxy-3"}},  # no condition: ready
            {"addresses": ["10.0.0.4"]},  # no targetRef: named by address
        ),
        "admin",
    )
    assert found == (
        discovery.ProxyEndpoint("proxy-1", "http://10.0.0.1:8081"),
        discovery.ProxyEndpoint("proxy-2", "http://10.0.0.2:8081", ready=False),  # waiting for its table
        discovery.ProxyEndpoint("proxy-3", "http://[fd00::3]:8081"),
        discovery.ProxyEndpoint("10.0.0.4:8081", "http://10.0.0.4:8081"),
    )


def test_a_slice_without_the_admin_port_has_no_proxies_and_pods_in_two_slices_count_once() -> None:
    assert discovery.proxy_endpoints(endpoint_slice({"addresses": ["10.0.0.1"]}, port_name="metrics"), "admin") == ()
    a = discovery.ProxyEndpoint("proxy-1", "http://10.0.0.1:8081")
    b = discovery.ProxyEndpoint("proxy-1", "http://[fd00::1]:8081")
    c = discovery.ProxyEndpoint("proxy-0", "http://10.0.0.9:8081")
    assert discovery.merge([(a,), (b, c)]) == (c, a)


# --- index records ------------------------------------------------------------------------------------------


def test_secret_records_keep_text_values_and_drop_binary_ones() -> None:
    body = {
        "metadata": {"name": "keys", "namespace": "team-a", "labels": {"modelyard.io/api-keys": "true"}},
        "data": {"text": base64.b64encode(b"sk-1").decode(), "binary": base64.b64encode(b"\xff\xfe").decode()},
    }
    record = inventory.secret_values(body)
    assert dict(record.values) == {"text": "sk-1"}
    assert record.is_api_keys


def test_settings_scope_adds_the_operator_namespace_for_the_proxy_slices() -> None:
    settings = OperatorSettings(watch_namespaces=("team-a", "team-b"), namespace="modelyard-system")
    assert settings.kopf_namespaces() == ["modelyard-system", "team-a", "team-b"]
    assert settings.watches("team-a")
    assert not settings.watches("modelyard-system")
    assert OperatorSettings(watch_namespaces=()).kopf_namespaces() == []


# --- status rules -------------------------------------------------------------------------------------------


ROLLOUT = Rollout(
    generation=7,
    ready=("proxy-a", "proxy-b", "proxy-c"),
    loaded={"proxy-a": 7, "proxy-b": 5, "proxy-c": 3},
    problems={"proxy-c": "push failed: connection refused"},
)


@pytest.mark.parametrize(
    ("since", "status", "reason", "replicas"),
    [(3, "True", "Programmed", "3/3"), (5, "False", "Pending", "2/3"), (7, "False", "Pending", "1/3")],
)
def test_programmed_needs_every_ready_proxy_on_a_generation_containing_the_route(
    since: int, status: str, reason: str, replicas: str
) -> None:
    condition = programmed(2, accepted=True, since=since, retained=False, rollout=ROLLOUT)
    assert (condition.status, condition.reason, condition.observed_generation) == (status, reason, 2)
    assert ROLLOUT.replicas(since) == replicas
    # It names the generation the pods are counted from, not the newest table (7).
    assert condition.message.startswith(f"{replicas} ready proxy replicas serve this route as it now stands")
    assert f"(from table generation {since})" in condition.message
    assert ("generation 7" in condition.message) == (since == 7)
    if status == "False":
        assert "proxy-c: push failed: connection refused" in condition.message


@pytest.mark.parametrize(
    ("accepted", "since", "retained", "rollout", "reason"),
    [
        (False, None, False, ROLLOUT, "NotAccepted"),
        (True, None, False, ROLLOUT, "UnresolvedRefs"),
        (True, 3, True, ROLLOUT, "LastGoodServed"),
        (True, 3, False, Rollout(generation=7), "NoReadyReplicas"),
    ],
)
def test_programmed_is_false_with_the_reason_when_the_route_is_not_live(
    accepted: bool, since: int | None, retained: bool, rollout: Rollout, reason: str
) -> None:
    condition = programmed(1, accepted=accepted, since=since, retained=retained, rollout=rollout)
    assert (condition.status, condition.reason) == ("False", reason)


def test_a_route_no_table_serves_counts_no_replica() -> None:
    assert ROLLOUT.replicas(None) == "0/3"


def test_an_unreachable_pod_outweighs_a_pending_one_and_a_refusal_outweighs_both() -> None:
    rollout = Rollout(generation=7, ready=("a", "b", "c"), unreachable=frozenset({"b"}), refused=frozenset({"c"}))
    assert rollout.lag_reason(["a"]) == "Pending"
    assert rollout.lag_reason(["a", "b"]) == "Unreachable"
    assert rollout.lag_reason(["a", "b", "c"]) == "Refused"


def test_transition_time_moves_only_when_the_status_does() -> None:
    before = [
        {"type": "Accepted", "status": "True", "reason": "Accepted", "lastTransitionTime": "T0"},
        {"type": "Programmed", "status": "False", "reason": "Pending", "lastTransitionTime": "T0"},
    ]
    now = [
        Condition("Accepted", "True", "Accepted", "spec is valid", 2),
        Condition("Programmed", "True", "Programmed", "3/3", 2),
    ]
    rendered = render_conditions(now, before, "T1")
    assert [c["lastTransitionTime"] for c in rendered] == ["T0", "T1"]
    assert rendered[0]["observedGeneration"] == 2


def test_events_are_posted_for_new_failures_and_for_getting_programmed_not_for_pending() -> None:
    before = [{"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs"}]
    conditions = [
        Condition("ResolvedRefs", "False", "SecretNotFound", "Secret team-a/keys not found", 1),
        Condition("Programmed", "False", "Pending", "1/2", 1),
    ]
    assert [(kind, c.reason) for kind, c in transitions(conditions, before)] == [("Warning", "SecretNotFound")]
    again = [{"type": "ResolvedRefs", "status": "False", "reason": "SecretNotFound"}]
    assert transitions(conditions[:1], again) == []
    live = [Condition("Programmed", "True", "Programmed", "2/2", 1)]
    assert [(kind, c.reason) for kind, c in transitions(live, before)] == [("Normal", "Programmed")]


def test_route_generations_read_back_keep_only_what_can_hold_for_the_table() -> None:
    table = tables.next_table(example_inventory("http://127.0.0.1:9"), None, {}, 4).table
    first, second, *_ = [route.id for route in table.routes]
    record = tables.RouteGenerations(
        since={first: 3, second: 9, "gone/route": 2},  # 9: after the table itself; gone: not in it
        hashes={3: "sha-of-3"},
    )
    assert table.generation == 5
    assert record.for_table(table) == tables.RouteGenerations(since={first: 3}, hashes={3: "sha-of-3"})
    unknown = tables.RouteGenerations(since={first: 2, second: 5})  # 2: no hash known; 5: the table's own
    assert unknown.for_table(table) == tables.RouteGenerations(since={second: 5}, hashes={5: table.sha256})


# --- the probes' verdicts -----------------------------------------------------------------------------------


class StatusWrites(KubeClient):
    """The API as the control loop sees it: no table Secret yet, and status writes that answer or hang."""

    def __init__(self, *, hang: bool) -> None:
        super().__init__()
        self.hang = hang

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    async def write_secret(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        return None

    async def patch_status(self, ref: ObjectRef, status: Mapping[str, Any]) -> None:
        if self.hang:
            await asyncio.Event().wait()

    async def post_event(self, ref: ObjectRef, uid: str, type_: str, reason: str, message: str) -> None:
        return None


@pytest.mark.looptime
@pytest.mark.parametrize("hang", [False, True], ids=["answering-api", "hanging-api"])
async def test_ready_after_the_first_pass_and_not_live_once_a_pass_outlasts_the_stall_timeout(hang: bool) -> None:
    settings = OperatorSettings(debounce=0.1, max_debounce=0.1, stall_timeout=60)
    context = OperatorContext(settings, StatusWrites(hang=hang), Debouncer(0.1, 0.1))
    body = {"metadata": {"name": "gpt", "namespace": "default"}, "spec": {"model": "gpt-4o", "targets": []}}
    routes = {("default", "gpt"): [inventory.observe("ModelRoute", body)]}
    context.start(Indices(routes=routes, credentials={}, secrets={}, proxies={}))
    try:
        assert (context.ready, context.stalled()) == (False, "")
        context.trigger.request()
        await asyncio.sleep(30)
        assert (context.ready, context.stalled()) == (not hang, "")
        await asyncio.sleep(31)
        assert context.ready is not hang
        assert context.stalled() == ("a reconcile pass has run for 61s (limit 60s)" if hang else "")
    finally:
        await context.stop()
