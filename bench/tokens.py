"""``make bench``'s token case: the CPU a Vertex AI call's authorisation costs once its access token is cached.

In one process: the simulator's Google token endpoint, and the authoriser the gateway gives a Vertex AI
credential with a service-account key. The first call fetches the token (a JWT signed and traded over HTTP,
in a thread); the calls after it are what every request pays. Their CPU time is measured against the same loop
without ``authorize``, so only the authorisation counts: a cached token's lookup and its header. A few seconds.

    python -m bench.tokens
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from pydantic import SecretStr

from bench.results import Tokens
from bench.stats import median
from modelyard_proxy.cloudauth import Authorizers
from modelyard_proxy.providers.base import UpstreamCall
from modelyard_routing import Credential, Provider
from modelyard_routing.specs import VertexOptions, VertexPublisher
from modelyard_simulator import create_app
from modelyard_simulator.google_auth import GOOGLE_AUTH
from modelyard_simulator.google_keys import PROJECT, service_account_key

CALLS = 100_000
#: Target: token handling adds at most this much CPU to a request.
BUDGET_US = 50.0


async def _cpu_us_per_call(rounds: int) -> list[float]:
    """Each round's CPU per authorised call, minus the same loop unauthorised (µs)."""
    runner = web.AppRunner(create_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        key = service_account_key(f"{url}/token").trusted_by(runner.app[GOOGLE_AUTH])
        credential = Credential(
            id="bench/vertex",
            provider=Provider.VERTEX_AI,
            base_url=f"{url}/v1",
            region="us-central1",
            vertex=VertexOptions(project=PROJECT, publisher=VertexPublisher.GOOGLE),
            service_account=SecretStr(key.json),
        )
        authorizers = Authorizers()
        authorizer = authorizers.for_credential(credential)
        if authorizer is None:
            raise SystemExit("vertex-ai credentials have no authoriser")
        await authorizer.authorize(UpstreamCall(url, {}, b""))  # the one fetch; every later call finds it cached
        per_call = []
        for _ in range(rounds):
            started = time.process_time_ns()
            for _ in range(CALLS):
                call = UpstreamCall(url, {"content-type": "application/json"}, b"{}")
                await authorizer.authorize(call)
            authorised = time.process_time_ns() - started
            started = time.process_time_ns()
            for _ in range(CALLS):
                call = UpstreamCall(url, {"content-type": "application/json"}, b"{}")
            bare = time.process_time_ns() - started
            per_call.append((authorised - bare) / CALLS / 1000)
        authorizers.close()
        return per_call
    finally:
        await runner.cleanup()


def measure(rounds: int = 5) -> Tokens:
    """Median CPU µs per authorised call over ``rounds``, the token cached."""
    return Tokens(cached_us=median(asyncio.run(_cpu_us_per_call(rounds))), budget_us=BUDGET_US)


if __name__ == "__main__":
    found = measure()
    verdict = "met" if found.met else "MISSED"
    print(
        f"Vertex AI token handling: {found.cached_us:.2f} µs CPU per request, token cached ({verdict}: ≤ {BUDGET_US:g} µs)"
    )
