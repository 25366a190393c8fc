"""What a failed attempt means: its fallback class, whether the same target may be retried, and when.

Follows the SDKs' retry classification (protocols §6): 429 rate limits, 5xx, 529, connect errors and
timeouts are transient; 401, 402, exhausted quotas and invalid requests never succeed on a retry. Which
transient classes are retried on the same target is the route's ``retry.retryOn``; the others fall back at once.
Context-length errors and content refusals are not transient either, but another model may accept the
request, so they can trigger a fallback when the route opts in.
"""

from __future__ import annotations

import random
import re

from modelyard_proxy.base.errors import GatewayError
from modelyard_routing import Policy

CONTENT_POLICY = re.compile(r"content[_ ]?(filter|policy|management)|ResponsibleAIPolicyViolation|safety", re.I)

#: Gateway error code → fallback trigger class (``fallbackOn`` values).
_CLASSES = {
    "rate_limit_exceeded": "rateLimit",
    "insufficient_quota": "quotaExhausted",
    "upstream_billing": "quotaExhausted",
    "upstream_error": "serverError",
    "upstream_truncated": "serverError",
    "upstream_malformed": "serverError",
    "upstream_unavailable": "overloaded",
    "upstream_unreachable": "connectError",
    # The pod's AWS identity gave no keys (none, refused, or not in time): this target cannot be called now,
    # another may be, as with an upstream that cannot be reached.
    "upstream_auth_unavailable": "connectError",
    "upstream_timeout": "timeout",
    "context_length_exceeded": "contextLength",
    "content_filter": "contentPolicy",
}
#: Classes that may pass on their own: they count against a target's health, and ``retry.retryOn`` may list them.
TRANSIENT = frozenset({"rateLimit", "serverError", "overloaded", "connectError", "timeout"})


def failure_class(error: GatewayError) -> str | None:
    """The fallback class of ``error``, or None for failures no other target would fix (auth, bad input)."""
    found = _CLASSES.get(error.code or "")
    if found is None and error.status == 400 and CONTENT_POLICY.search(f"{error.code or ''} {error.message}"):
        return "contentPolicy"
    if found in TRANSIENT and not error.retryable:
        return None
    return found


def retries_same_target(error: GatewayError, policy: Policy) -> bool:
    """Whether the route tries the same target again after ``error``: a transient failure of a class its
    ``retry.retryOn`` lists (a timeout is not, by default: the next target is the faster way to an answer)."""
    return error.retryable and failure_class(error) in policy.retry_on


def falls_back(error: GatewayError, policy: Policy) -> bool:
    """Whether ``error`` moves the request on to the route's next target."""
    kind = failure_class(error)
    return kind is not None and kind in policy.fallback_on


def counts_against_health(error: GatewayError) -> bool:
    """Failures that say something about the target, not about the request."""
    return failure_class(error) in TRANSIENT


def backoff(policy: Policy, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
    """Seconds before retry number ``retry`` (0-based): capped exponential with jitter, or what the upstream asked.

    Jitter takes 50 to 100 % of the exponential step, so retries spread out without collapsing to zero.
    An upstream's ``retry-after-ms``/``Retry-After`` wins when it asks for longer.
    """
    step: float = min(policy.backoff_max_ms, policy.backoff_initial_ms * 2**retry) / 1000
    delay = step * (0.5 + rng.random() / 2)
    return max(delay, retry_after) if retry_after is not None else delay
