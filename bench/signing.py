"""CPU per SigV4-signed Bedrock request: botocore's ``SigV4Auth`` as its clients use it, against the gateway's signer.

botocore's clients build an ``AWSRequest`` and a fresh ``SigV4Auth`` for every request; the gateway keeps one
:class:`~modelyard_proxy.cloudauth.sigv4.SigV4Signer` per credential. Both sign the same request (a 2 KB
Converse body, temporary credentials, the headers the adapter sends) in interleaved rounds, timed with the
process's CPU clock; the medians are reported. A few seconds in all.

    python -m bench.signing
"""

from __future__ import annotations

import time
from collections.abc import Callable

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from bench.results import Signing
from bench.stats import median
from modelyard_proxy.cloudauth.sigv4 import SigV4Signer

REGION = "eu-west-1"
URL = f"https://bedrock-runtime.{REGION}.amazonaws.com/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
HEADERS = {"content-type": "application/json", "accept": "application/json"}
BODY = b'{"messages":[{"role":"user","content":[{"text":"' + b"Summarise the quarterly report. " * 64 + b'"}]}]}'
CREDENTIALS = ReadOnlyCredentials(
    "ASIAIOSFODNN7EXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", "IQoJb3JpZ2lu" * 30
)
#: Target: signing adds at most this much CPU to a request.
BUDGET_US = 50.0


def botocore_plain() -> None:
    request = AWSRequest("POST", URL, data=BODY, headers=dict(HEADERS))
    SigV4Auth(CREDENTIALS, "bedrock", REGION).add_auth(request)


_SIGNER = SigV4Signer("bedrock", REGION)


def gateway_signer() -> None:
    _SIGNER.sign("POST", URL, dict(HEADERS), BODY, credentials=CREDENTIALS)


def _cpu_us(sign: Callable[[], None], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        sign()
    return (time.process_time() - started) / calls * 1e6


def measure(rounds: int = 5, calls: int = 4000) -> Signing:
    """Median CPU µs per signed request of each signer, over ``rounds`` interleaved rounds."""
    _cpu_us(botocore_plain, 200)  # warm both up
    _cpu_us(gateway_signer, 200)
    plain, ours = [], []
    for _ in range(rounds):
        plain.append(_cpu_us(botocore_plain, calls))
        ours.append(_cpu_us(gateway_signer, calls))
    return Signing(botocore_us=median(plain), gateway_us=median(ours), budget_us=BUDGET_US)


def main() -> None:
    result = measure()
    print("CPU per SigV4-signed request (median of interleaved rounds)")
    print(f"  botocore SigV4Auth (per request, as its clients sign): {result.botocore_us:6.1f} µs")
    print(f"  gateway SigV4Signer (one per credential):             {result.gateway_us:6.1f} µs")
    print(f"  ratio: {result.ratio:.2f}x; budget {result.budget_us:g} µs: {'met' if result.met else 'MISSED'}")


if __name__ == "__main__":
    main()
