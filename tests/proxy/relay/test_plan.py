"""The plan on its own, over scripted attempts: the order of targets, retries, fallback and hedge timing."""

from __future__ import annotations

import asyncio
import random
from typing import Literal

import pytest

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.observability.metrics import Metrics
from modelyard_proxy.relay.outcomes import Prepared
from modelyard_proxy.relay.plan import Plan
from modelyard_proxy.relay.reporting import RunRecord
from modelyard_proxy.routing.deadlines import Deadlines
from modelyard_proxy.routing.health import HealthRegistry
from modelyard_proxy.table.store import ResolvedTarget
from modelyard_routing import Policy
from tests.proxy.relay.routes import route

#: How a scripted attempt ends: it answers, it fails with this error, or it waits until it is cancelled.
Step = Literal["ok", "hang"] | GatewayError


def overloaded() -> GatewayError:
    return GatewayError(503, "upstream overloaded", type="upstream_error", code="upstream_unavailable", retryable=True)


def bad_key() -> GatewayError:
    return GatewayError(401, "upstream refused the key", type="authentication_error", code="invalid_api_key")


class Script:
    """Scripted attempts: each target's steps in turn, and a log of every call with its retry and hedge flag."""

    def __init__(self, record: RunRecord, **steps: list[Step]) -> None:
        self.record = record
        self.steps = steps
        self.calls: list[tuple[str, int, bool]] = []
        self.cancelled: list[str] = []
        self.closed: list[str] = []

    def check_fits(self, resolved: ResolvedTarget) -> None:
        pass

    async def run(self, resolved: ResolvedTarget, deadlines: Deadlines, *, retry: int, hedge: bool) -> Prepared:
        target = resolved.target.id
        self.record.attempts += 1
        self.calls.append((target, retry, hedge))
        step = self.steps[target].pop(0)
        if isinstance(step, GatewayError):
            raise step
        if step == "hang":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(target)
                raise
        return Prepared(resolved, body=target.encode())


async def find(policy: Policy, ids: tuple[str, ...], **steps: list[Step]) -> tuple[Prepared, Script, Plan]:
    record = RunRecord()
    script = Script(record, **steps)
    plan = Plan(route(policy, *ids), script, record, Metrics(), HealthRegistry(), random.Random(1))
    deadlines = Deadlines(1.0, 1.0, 1.0, None)
    prepared = await asyncio.wait_for(plan.find(None, deadlines), 5)
    return prepared, script, plan


async def test_a_failure_the_route_falls_back_on_moves_to_the_next_target_in_priority_order() -> None:
    prepared, script, plan = await find(Policy(), ("a", "b", "c"), a=[overloaded()], b=["ok"], c=["ok"])
    assert prepared.resolved.target.id == "b"
    assert script.calls == [("a", 0, False), ("b", 0, False)]
    assert plan.record.fallback_reason == "upstream_unavailable"
    assert plan.metrics.fallbacks.values == {("r", "upstream_unavailable"): 1.0}


async def test_a_failure_no_other_target_would_fix_is_the_answer() -> None:
    with pytest.raises(GatewayError) as raised:
        await find(Policy(), ("a", "b"), a=[bad_key()], b=["ok"])
    assert raised.value.code == "invalid_api_key"


async def test_a_transient_failure_is_retried_on_the_same_target_before_falling_back() -> None:
    policy = Policy(attempts=3, backoff_initial_ms=1, backoff_max_ms=1)
    prepared, script, plan = await find(policy, ("a", "b"), a=[overloaded(), overloaded(), "ok"], b=["ok"])
    assert prepared.resolved.target.id == "a"
    assert script.calls == [("a", 0, False), ("a", 1, False), ("a", 2, False)]
    assert plan.record.fallback_reason is None


async def test_the_cap_on_attempts_ends_the_run_with_the_last_failure() -> None:
    policy = Policy(attempts=3, backoff_initial_ms=1, backoff_max_ms=1, max_total_attempts=2)
    with pytest.raises(GatewayError) as raised:
        await find(policy, ("a", "b"), a=[overloaded(), overloaded()], b=["ok"])
    assert raised.value.code == "upstream_unavailable"


async def test_a_hedge_starts_the_second_target_after_the_delay_and_the_first_answer_wins() -> None:
    policy = Policy(strategy="hedge", hedge_delay_ms=5)
    prepared, script, plan = await find(policy, ("a", "b"), a=["hang"], b=["ok"])
    assert prepared.resolved.target.id == "b"
    assert script.calls == [("a", 0, False), ("b", 0, True)]
    assert script.cancelled == ["a"]  # the loser is cancelled, not left running
    assert plan.metrics.hedges.values == {("r",): 1.0}


async def test_a_hedge_does_not_wait_out_its_delay_when_the_first_target_fails() -> None:
    policy = Policy(strategy="hedge", hedge_delay_ms=3_600_000)  # find() gives up after 5 s
    prepared, script, _ = await find(policy, ("a", "b"), a=[overloaded()], b=["ok"])
    assert prepared.resolved.target.id == "b"
    assert script.calls == [("a", 0, False), ("b", 0, True)]


async def test_a_hedge_does_not_start_the_second_target_after_a_failure_it_would_not_fix() -> None:
    policy = Policy(strategy="hedge", hedge_delay_ms=3_600_000)
    with pytest.raises(GatewayError) as raised:
        await find(policy, ("a", "b", "c"), a=[bad_key()], b=["ok"], c=["ok"])
    assert raised.value.code == "invalid_api_key"


async def test_after_both_hedged_targets_fail_the_plan_falls_back_to_the_rest() -> None:
    policy = Policy(strategy="hedge", hedge_delay_ms=1)
    prepared, script, _ = await find(policy, ("a", "b", "c"), a=[overloaded()], b=[overloaded()], c=["ok"])
    assert prepared.resolved.target.id == "c"
    assert [call[0] for call in script.calls] == ["a", "b", "c"]
