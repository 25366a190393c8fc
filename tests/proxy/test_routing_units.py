"""Balancer distributions, the circuit breaker's state machine, and the retry policy's arithmetic."""

from __future__ import annotations

import collections
import dataclasses
import random

import pytest

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.routing import policy
from modelyard_proxy.routing.balancers import plan
from modelyard_proxy.routing.health import BUCKETS, BreakerState, HealthRegistry, TargetHealth
from modelyard_proxy.table.store import CompiledTable
from modelyard_routing import Credential, Policy, Provider, Route, RoutingTable, Target


@dataclasses.dataclass(frozen=True)
class T:
    target_id: str
    weight: int = 1
    priority: int = 0


def state(health: TargetHealth) -> BreakerState:
    """The breaker state, read through a call so mypy does not narrow it across transitions."""
    return health.state


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def firsts(strategy: str, targets: list[T], health: HealthRegistry, n: int = 4000) -> collections.Counter[str]:
    rng = random.Random(7)
    return collections.Counter(plan(strategy, targets, health, rng)[0].target_id for _ in range(n))


def test_priority_tries_lower_priorities_first_and_splits_by_weight_within_one() -> None:
    targets = [T("backup", priority=1), T("a", weight=3), T("b", weight=1)]
    counts = firsts("priority", targets, HealthRegistry())
    assert set(counts) == {"a", "b"}
    assert counts["a"] / 4000 == pytest.approx(0.75, abs=0.03)
    assert plan("priority", targets, HealthRegistry())[-1].target_id == "backup"


def test_weighted_splits_over_all_targets_for_canaries() -> None:
    targets = [T("stable", weight=95, priority=0), T("canary", weight=5, priority=1), T("off", weight=0)]
    counts = firsts("weighted", targets, HealthRegistry())
    assert counts["canary"] / 4000 == pytest.approx(0.05, abs=0.015)
    assert counts["off"] == 0
    assert len(plan("weighted", targets, HealthRegistry())) == 3  # the others stay as fallbacks


def test_latency_prefers_the_faster_target_by_power_of_two_choices() -> None:
    health = HealthRegistry()
    health["fast"].latency, health["slow"].latency, health["slower"].latency = 0.1, 0.5, 0.9
    counts = firsts("latency", [T("slow"), T("fast"), T("slower")], health, n=3000)
    # p2c: the fastest wins every pair it is in (2/3), the middle one only against the slowest (1/3).
    assert counts["fast"] / 3000 == pytest.approx(2 / 3, abs=0.03)
    assert counts["slower"] == 0


def test_ewma_latency_moves_toward_new_samples() -> None:
    health = HealthRegistry()
    target = health["t"]
    target.record(Policy(), ok=True, latency=1.0)
    target.record(Policy(), ok=True, latency=0.0)
    assert target.latency == pytest.approx(0.7)


BREAKER = Policy(
    breaker_failure_rate_percent=50, breaker_min_requests=4, breaker_window_ms=10_000, breaker_cooldown_ms=5_000
)


def test_breaker_opens_at_the_failure_rate_then_half_opens_and_closes_on_a_good_probe() -> None:
    clock = Clock()
    health = HealthRegistry(clock)["t"]
    for ok in (True, False, True):
        health.record(BREAKER, ok=ok)
    assert state(health) is BreakerState.CLOSED  # 3 requests: below minRequests
    health.record(BREAKER, ok=False)
    assert state(health) is BreakerState.OPEN
    assert not health.available()
    clock.now = 4.9
    assert not health.available()
    assert health.reopens_in() == pytest.approx(0.1)
    clock.now = 5.0
    assert health.available()
    assert state(health) is BreakerState.HALF_OPEN
    health.begin()
    assert not health.available()  # one probe at a time
    health.record(BREAKER, ok=True)
    assert state(health) is BreakerState.CLOSED
    assert health.available()


def test_a_failed_probe_reopens_for_another_cooldown() -> None:
    clock = Clock()
    health = HealthRegistry(clock)["t"]
    for _ in range(4):
        health.record(BREAKER, ok=False)
    clock.now = 5.0
    assert health.available()
    health.begin()
    health.record(BREAKER, ok=False)
    assert state(health) is BreakerState.OPEN
    clock.now = 9.9
    assert not health.available()


def test_old_outcomes_leave_the_window() -> None:
    clock = Clock()
    health = HealthRegistry(clock)["t"]
    for _ in range(3):
        health.record(BREAKER, ok=False)
    clock.now = 11.0
    health.record(BREAKER, ok=False)
    assert state(health) is BreakerState.CLOSED  # the first three are older than the window


def test_the_window_costs_bounded_memory_at_any_request_rate() -> None:
    clock = Clock()
    health = HealthRegistry(clock)["t"]
    for i in range(50_000):  # 50,000 requests over 50 s, a 10 s window: 1 failure in 10
        clock.now = i / 1000
        health.record(BREAKER, ok=i % 10 != 0)
    assert state(health) is BreakerState.CLOSED
    assert len(health.buckets) <= BUCKETS + 1
    assert 9_000 <= health.total <= 10_000  # about one window's worth, expired a bucket at a time
    assert health.failures * 10 == pytest.approx(health.total, rel=0.01)


def test_open_targets_are_skipped_but_all_open_still_tries_the_one_closest_to_probing() -> None:
    clock = Clock()
    registry = HealthRegistry(clock)
    for name, at in (("a", 0.0), ("b", 2.0)):
        clock.now = at
        for _ in range(4):
            registry[name].record(BREAKER, ok=False)
    clock.now = 3.0
    assert [t.target_id for t in plan("priority", [T("a"), T("b"), T("c", priority=1)], registry)] == ["c"]
    assert [t.target_id for t in plan("priority", [T("b"), T("a")], registry)] == ["a"]


def test_retry_classification() -> None:
    limited = GatewayError(429, "slow down", code="rate_limit_exceeded", retryable=True)
    quota = GatewayError(429, "quota", code="insufficient_quota")
    auth = GatewayError(502, "bad key", code="upstream_auth_failed")
    context = GatewayError(400, "too long", code="context_length_exceeded")
    defaults = Policy()
    assert policy.retries_same_target(limited, defaults)
    assert not any(policy.retries_same_target(e, defaults) for e in (quota, auth, context))
    assert policy.falls_back(quota, defaults)
    assert not policy.falls_back(auth, defaults)
    assert not policy.falls_back(context, defaults)
    assert policy.falls_back(context, Policy(fallback_on=("contextLength",)))


TIMED_OUT = GatewayError(504, "silent", type="upstream_error", code="upstream_timeout", retryable=True)
FAILED = GatewayError(502, "down", type="upstream_error", code="upstream_error", retryable=True)
UNREACHABLE = GatewayError(502, "refused", type="upstream_error", code="upstream_unreachable", retryable=True)


def test_a_timeout_falls_back_at_once_by_default_and_is_retried_when_the_route_lists_it() -> None:
    defaults = Policy()
    assert not policy.retries_same_target(TIMED_OUT, defaults)
    assert policy.falls_back(TIMED_OUT, defaults)
    assert policy.retries_same_target(TIMED_OUT, Policy(retry_on=("timeout",)))


def test_retry_on_decides_per_class_which_transient_failures_are_retried() -> None:
    only_timeouts = Policy(retry_on=("timeout",))
    assert [policy.retries_same_target(e, only_timeouts) for e in (TIMED_OUT, FAILED, UNREACHABLE)] == [
        True,
        False,
        False,
    ]
    assert [policy.retries_same_target(e, Policy()) for e in (TIMED_OUT, FAILED, UNREACHABLE)] == [False, True, True]
    nothing = Policy(retry_on=())
    assert not any(policy.retries_same_target(e, nothing) for e in (TIMED_OUT, FAILED, UNREACHABLE))
    # Not retrying a class never stops the fallback, nor the breaker counting it against the target.
    assert all(policy.falls_back(e, nothing) for e in (TIMED_OUT, FAILED, UNREACHABLE))
    assert all(policy.counts_against_health(e) for e in (TIMED_OUT, FAILED, UNREACHABLE))


def test_a_non_retryable_failure_is_never_retried_whatever_the_route_lists() -> None:
    gave_up = GatewayError(504, "cut", type="upstream_error", code="upstream_timeout")
    assert not policy.retries_same_target(gave_up, Policy(retry_on=("timeout",)))


def test_backoff_is_capped_jittered_and_honours_retry_after() -> None:
    rng = random.Random(1)
    spec = Policy(backoff_initial_ms=100, backoff_max_ms=400)
    for retry, step in ((0, 0.1), (1, 0.2), (2, 0.4), (5, 0.4)):
        delays = [policy.backoff(spec, retry, rng) for _ in range(200)]
        assert step / 2 <= min(delays)
        assert max(delays) <= step
    assert policy.backoff(spec, 0, rng, retry_after=3.0) == 3.0


def test_one_target_per_priority_keeps_the_table_order_and_still_skips_open_breakers() -> None:
    targets = [T("primary"), T("second", priority=1), T("third", priority=2)]
    clock = Clock()
    health = HealthRegistry(clock)
    ordered = plan("priority", targets, health, one_per_priority=True)
    assert [t.target_id for t in ordered] == ["primary", "second", "third"]
    health["primary"].state = BreakerState.OPEN
    health["primary"].opened_at = clock.now
    assert [t.target_id for t in plan("priority", targets, health, one_per_priority=True)] == ["second", "third"]


def test_target_sets_know_when_no_two_targets_share_a_priority() -> None:
    credential = Credential(id="c", provider=Provider.OPENAI, base_url="http://upstream/v1")
    split = (Target(id="a", credential="c", model="m1"), Target(id="b", credential="c", model="m2"))
    chain = (split[0], Target(id="c", credential="c", model="m3", priority=1))
    table = RoutingTable(
        routes=(Route(id="r1", model="split", targets=split), Route(id="r2", model="chain", targets=chain)),
        credentials=(credential,),
    ).sealed(1)
    compiled = CompiledTable.from_table(table)
    assert compiled.routes["chain"].targets.one_per_priority
    assert not compiled.routes["split"].targets.one_per_priority
