"""Outage rehearsal: a route's ``faults`` block fails or slows attempts as if the upstream had."""

from __future__ import annotations

import asyncio
import random

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.failures.classify import classify
from modelyard_routing import Credential
from modelyard_routing.table import Faults

INJECTED = "fault injected by the route's faults block"


async def inject(faults: Faults | None, credential: Credential, rng: random.Random) -> None:
    """Sleep and/or raise the error an upstream answering ``abort_status`` would cause."""
    if faults is None:
        return
    if faults.delay_ms and rng.random() * 100 < faults.delay_percent:
        await asyncio.sleep(faults.delay_ms / 1000)
    if faults.abort_percent and rng.random() * 100 < faults.abort_percent:
        error: GatewayError = classify(faults.abort_status, INJECTED, credential, provider=credential.provider.value)
        raise error
