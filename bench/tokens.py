"""``make bench``'s token case: the CPU a Vertex AI call's authorisation costs once its access token is cached.

In one process: the simulator's Google token endpoint, and the authoriser the gateway gives a Vertex AI
credential with a service-account key. The first call fetches the token (a JWT signed and traded over HTTP,
in a thread); the calls after it are what every request pays. Their CPU time is measured against the same loop
without ``authorize``, so only the authorisation counts: a cached token's lookup and its header.

    python -m bench.tokens
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from pydantic import SecretStr

from modelyard_proxy.cloudauth import Authorizers
from modelyard_proxy.providers.base import UpstreamCall
from modelyard_routing import Credential, Provider
from modelyard_routing.specs import VertexOptions, VertexPublisher
from modelyard_simulator import create_app
from modelyard_simulator.google_auth import GOOGLE_AUTH
from modelyard_simulator.google_keys import PROJECT, service_account_key

CALLS = 200_000
ROUNDS = 5
#: What token handling may add per request (µs of CPU).
TARGET_US = 50.0


async def _cpu_us_per_call() -> float:
    """Median over rounds of the CPU per authorised call, minus the same loop unauthorised (µs)."""
    runner = web.AppRunner(create_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}"
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
        rounds = []
        for _ in range(ROUNDS):
            started = time.process_time_ns()
            for _ in range(CALLS):
                call = UpstreamCall(url, {"content-type": "application/json"}, b"{}")
                await authorizer.authorize(call)
            authorised = time.process_time_ns() - started
            started = time.process_time_ns()
            for _ in range(CALLS):
                call = UpstreamCall(url, {"content-type": "application/json"}, b"{}")
            bare = time.process_time_ns() - started
            rounds.append((authorised - bare) / CALLS / 1000)
        authorizers.close()
        return sorted(rounds)[len(rounds) // 2]
    finally:
        await runner.cleanup()


def report() -> str:
    """The measurement as a Markdown section of the benchmark report."""
    cost = asyncio.run(_cpu_us_per_call())
    verdict = "✅" if cost <= TARGET_US else "❌"
    return "\n".join(
        [
            "",
            "## Vertex AI access tokens (in-process)",
            "",
            "| target | measured | |",
            "|---|---|---|",
            f"| token handling ≤ {TARGET_US:g} µs CPU per request, the token cached | {cost:.2f} µs | {verdict} |",
            "",
            f"CPU per call of a Vertex AI credential's authoriser with its token cached, minus the same loop without"
            f" it: median of {ROUNDS} rounds of {CALLS:,} calls (`python -m bench.tokens`).",
            "",
        ]
    )


if __name__ == "__main__":
    print(report())
