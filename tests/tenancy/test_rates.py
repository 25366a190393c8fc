"""Requests and tokens per minute (leaky buckets, GCRA's equivalent) and concurrency, on both backends."""

from __future__ import annotations

import pytest

from modelyard_proxy.tenancy.counters import Counters
from tests.tenancy.kit import Clock, ask, consumer


async def test_a_burst_of_the_limit_passes_the_next_waits_and_then_passes(counters: Counters, clock: Clock) -> None:
    team = consumer(rpm=3)
    admitted = [await counters.admit(ask(team)) for _ in range(3)]
    assert all(answer.lease for answer in admitted)
    assert [answer.rates.remaining_requests for answer in admitted] == [2, 1, 0]
    assert admitted[0].rates.limit_requests == 3

    refused = await counters.admit(ask(team))
    assert refused.lease is None
    assert refused.refusal is not None
    assert refused.refusal.reason == "requests"
    assert refused.refusal.message == "consumer teams/search is over its 3 requests per minute"
    # Three requests in the bucket drain at one per 20 s: one more fits 20 s later.
    assert refused.refusal.retry_after_s == pytest.approx(20, abs=0.01)
    assert refused.rates.remaining_requests == 0
    assert refused.rates.reset_requests_s == pytest.approx(60, abs=0.01)

    clock.advance(19.9)
    assert (await counters.admit(ask(team))).refusal is not None
    clock.advance(0.1)
    assert (await counters.admit(ask(team))).lease is not None


async def test_tokens_per_minute_charge_the_worst_case_and_wait_for_room(counters: Counters, clock: Clock) -> None:
    team = consumer(tpm=1000)
    first = await counters.admit(ask(team, tokens=600))
    assert first.lease is not None
    assert (first.rates.limit_tokens, first.rates.remaining_tokens) == (1000, 400)
    assert first.rates.limit_requests is None

    refused = await counters.admit(ask(team, tokens=600))
    assert refused.refusal is not None
    assert refused.refusal.reason == "tokens"
    assert refused.refusal.message == "consumer teams/search is over its 1000 tokens per minute"
    # 200 tokens too many, draining at 1000 a minute: 12 s.
    assert refused.refusal.retry_after_s == pytest.approx(12, abs=0.01)

    clock.advance(12)
    assert (await counters.admit(ask(team, tokens=600))).lease is not None


async def test_a_request_bigger_than_the_whole_tokens_limit_can_never_fit(counters: Counters) -> None:
    team = consumer(tpm=1000)
    refused = await counters.admit(ask(team, tokens=1001))
    assert refused.refusal is not None
    assert refused.refusal.reason == "tokens"
    assert refused.refusal.retry_after_s is None
    assert "up to 1001 tokens" in refused.refusal.message
    assert "whole 1000 tokens per minute" in refused.refusal.message
    assert "never" in refused.refusal.message
    # It charged nothing: the whole minute is still there.
    assert (await counters.admit(ask(team, tokens=1000))).lease is not None


async def test_settling_corrects_tokens_to_the_real_count(counters: Counters) -> None:
    team = consumer(tpm=1000)
    admitted = await counters.admit(ask(team, tokens=900))
    assert admitted.lease is not None
    assert (await counters.admit(ask(team, tokens=800))).refusal is not None
    await counters.settle(admitted.lease, model="gpt", input_tokens=60, output_tokens=40, cost_usd=0.0)
    # 100 real tokens counted instead of 900 reserved: 800 more fit.
    again = await counters.admit(ask(team, tokens=800))
    assert again.lease is not None
    assert again.rates.remaining_tokens == 100


async def test_a_release_returns_its_tokens_but_still_counts_as_a_request(counters: Counters) -> None:
    team = consumer(rpm=2, tpm=1000)
    failed = await counters.admit(ask(team, tokens=900))
    assert failed.lease is not None
    await counters.release(failed.lease)
    assert (await counters.admit(ask(team, tokens=900))).lease is not None
    third = await counters.admit(ask(team, tokens=10))
    assert third.refusal is not None
    assert third.refusal.reason == "requests"


async def test_concurrency_caps_requests_in_flight_until_one_finishes(counters: Counters) -> None:
    team = consumer(concurrent=2)
    first, second = [await counters.admit(ask(team)) for _ in range(2)]
    assert first.lease is not None
    assert second.lease is not None
    refused = await counters.admit(ask(team))
    assert refused.refusal is not None
    assert refused.refusal.reason == "concurrency"
    assert refused.refusal.message == "consumer teams/search already has its 2 concurrent requests in flight"

    await counters.settle(first.lease, model="gpt", input_tokens=1, output_tokens=1, cost_usd=0.0)
    assert (await counters.admit(ask(team))).lease is not None
    assert (await counters.admit(ask(team))).refusal is not None
    await counters.release(second.lease)
    assert (await counters.admit(ask(team))).lease is not None


async def test_a_dead_pods_concurrency_slot_expires(counters: Counters, clock: Clock) -> None:
    team = consumer(concurrent=1)
    assert (await counters.admit(ask(team, hold=5))).lease is not None
    assert (await counters.admit(ask(team, hold=5))).refusal is not None
    clock.advance(5.001)
    assert (await counters.admit(ask(team, hold=5))).lease is not None


async def test_a_refused_request_charges_no_limit(counters: Counters) -> None:
    team = consumer(rpm=2, concurrent=1)
    held = await counters.admit(ask(team))
    assert held.lease is not None
    assert (await counters.admit(ask(team))).refusal is not None  # concurrency
    await counters.release(held.lease)
    # The refused request did not count against requests per minute.
    assert (await counters.admit(ask(team))).lease is not None


async def test_consumers_do_not_share_limits(counters: Counters) -> None:
    search, chat = consumer(rpm=1), consumer("teams/chat", rpm=1)
    assert (await counters.admit(ask(search))).lease is not None
    assert (await counters.admit(ask(chat))).lease is not None
    assert (await counters.admit(ask(search))).refusal is not None


async def test_a_consumer_without_limits_is_always_admitted(counters: Counters) -> None:
    team = consumer()
    answers = [await counters.admit(ask(team, tokens=10**9)) for _ in range(50)]
    assert all(answer.lease for answer in answers)
    assert answers[-1].rates.limit_requests is None
    assert answers[-1].rates.remaining_tokens is None
