"""A run's share of its consumer's limits and budgets: asked for before any upstream call, settled after.

Admission reserves the request's worst case (:mod:`~modelyard_proxy.relay.estimate`) against every rate and
budget at once, so a burst of concurrent requests can never all pass a budget that fits only some of them.
When the run ends the reservation becomes the real cost, or, if no upstream answered, nothing at all. The
counters settle in the background (batched with other requests'): a client that leaves must not cancel the
bookkeeping of what it spent.
"""

from __future__ import annotations

import math
from typing import Any

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.observability.accounting import MILLION
from modelyard_proxy.relay import estimate
from modelyard_proxy.relay.reporting import RunRecord
from modelyard_proxy.table.store import Caller, ResolvedRoute, TargetSet
from modelyard_proxy.tenancy.counters import Counters
from modelyard_proxy.tenancy.ledger import Ask, Lease, RateState, Refusal, Spend
from modelyard_routing.consumer_spec import UnpricedModels
from modelyard_routing.table import Consumer

#: How long a reservation outlives a pod that died holding it, when the route sets no total timeout.
DEFAULT_HOLD_SECONDS = 3600.0
#: Added to a route's total timeout: the settlement itself takes a moment after the deadline.
HOLD_MARGIN_SECONDS = 60.0


class Quota:
    """An admitted run's lease, the rate state its response headers report, and what it reserved."""

    __slots__ = ("consumer", "counters", "lease", "rates", "reserved_tokens", "reserved_usd")

    def __init__(
        self, consumer: Consumer, counters: Counters, lease: Lease, rates: RateState, *, tokens: int, usd: float
    ) -> None:
        self.consumer = consumer
        self.counters = counters
        self.lease = lease
        self.rates = rates
        self.reserved_tokens = tokens
        self.reserved_usd = usd

    def headers(self) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers for the consumer's limits, so SDKs and clients can pace."""
        return rate_headers(self.rates)

    def finish(self, record: RunRecord, *, answered: bool, model: str) -> None:
        """Settle to the real cost when an upstream answered (the reservation when it reported no usage: it
        billed something), else release everything; in the background, so a cancelled run still settles."""
        spend = None
        if answered:
            usage = record.usage
            if usage is None:
                spend = Spend(model, self.reserved_tokens, 0, self.reserved_usd)
            else:
                spend = Spend(model, usage.input, usage.output, record.cost or 0.0)
        self.counters.submit(self.lease, spend)


async def admit(
    caller: Caller,
    counters: Counters,
    *,
    request_id: str,
    name: str,
    route: ResolvedRoute,
    targets: TargetSet,
    body: dict[str, Any],
    embeddings: bool,
    total_seconds: float | None,
) -> Quota | None:
    """Check the caller may call ``name`` and reserve the run's worst case; None for a plain key (no limits).

    Raises the refusal in OpenAI's shape: 403 for a model outside the consumer's list, 429 for a rate or a
    budget, 503 when the counters cannot be reached and the consumer fails closed.
    """
    consumer = caller.consumer
    if consumer is None:
        return None
    if not caller.allows(name, route.route):
        raise model_not_allowed(consumer, name)
    needs_estimate = bool(consumer.budgets) or consumer.limits.tokens_per_minute is not None
    tokens, usd = _worst_case(consumer, name, targets, body, embeddings=embeddings) if needs_estimate else (0, 0.0)
    hold = DEFAULT_HOLD_SECONDS if total_seconds is None else total_seconds + HOLD_MARGIN_SECONDS
    admission = await counters.admit(Ask(consumer, request_id, tokens, usd, hold))
    if admission.lease is None:
        assert admission.refusal is not None
        raise refused(admission.refusal, admission.rates)
    return Quota(consumer, counters, admission.lease, admission.rates, tokens=tokens, usd=usd)


def _worst_case(
    consumer: Consumer, name: str, targets: TargetSet, body: dict[str, Any], *, embeddings: bool
) -> tuple[int, float]:
    """The most tokens and USD any of the route's targets could take for this request."""
    prompt = estimate.embeddings_input_tokens(body) if embeddings else estimate.chat_input_tokens(body)
    tokens, usd = 0, 0.0
    for target in targets.targets:
        output = 0 if embeddings else estimate.output_tokens(body, target.output_limit)
        tokens = max(tokens, prompt + output)
        price = target.price
        if price is None:
            if consumer.budgets and consumer.unpriced_models is UnpricedModels.REFUSE:
                raise GatewayError(
                    403,
                    f"model {name!r} may be served by {target.target.model!r}, which has no price, and consumer "
                    f"{consumer.name} refuses unpriced models (its budgets could not count them)",
                    type="permission_error",
                    param="model",
                    code="model_unpriced",
                )
            continue
        usd = max(usd, (prompt * price.input + output * price.output) / MILLION)
    return tokens, usd


def model_not_allowed(consumer: Consumer, name: str) -> GatewayError:
    """403 naming the model and the consumer: model names are the platform's configuration, not a secret, and
    a clear refusal sends the team to whoever grants models instead of debugging a typo."""
    return GatewayError(
        403,
        f"consumer {consumer.name} may not call model {name!r}",
        type="permission_error",
        param="model",
        code="model_not_allowed",
    )


def refused(refusal: Refusal, rates: RateState) -> GatewayError:
    """The counters' refusal in OpenAI's shape, with the headers an SDK backs off by."""
    if refusal.reason == "store_unavailable":
        return GatewayError(503, refusal.message, type="server_error", code="limits_unavailable", retry_after=1)
    budget = refusal.reason == "budget"
    error = GatewayError(
        429,
        refusal.message,
        type="insufficient_quota" if budget else refusal.reason,
        code="budget_exceeded" if budget else "rate_limit_exceeded",
        retry_after=refusal.retry_after_s,
    )
    error.extra_headers.update(rate_headers(rates))
    if budget or refusal.retry_after_s is None:
        # The OpenAI SDKs honour it: a spent budget or a request no rate can fit does not pass on a retry
        # seconds later (Retry-After still says when the budget resets).
        error.extra_headers["x-should-retry"] = "false"
    return error


def rate_headers(rates: RateState) -> dict[str, str]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` for the limits the consumer has."""
    headers: dict[str, str] = {}
    if rates.limit_requests is not None:
        _rate_headers(headers, _REQUESTS, rates.limit_requests, rates.remaining_requests, rates.reset_requests_s)
    if rates.limit_tokens is not None:
        _rate_headers(headers, _TOKENS, rates.limit_tokens, rates.remaining_tokens, rates.reset_tokens_s)
    return headers


#: Each limit's header names: limit, remaining, reset.
_REQUESTS = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests")
_TOKENS = ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")


def _rate_headers(
    headers: dict[str, str], names: tuple[str, ...], limit: int, remaining: int | None, reset: float | None
) -> None:
    headers[names[0]] = str(limit)
    if remaining is not None:
        headers[names[1]] = str(max(0, remaining))
    if reset is not None:
        headers[names[2]] = duration(reset)


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
