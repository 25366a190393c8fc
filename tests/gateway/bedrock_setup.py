"""Bedrock credentials and routes against the simulator, shared by the Bedrock gateway tests.

Three ways in: static keys from a Secret (SigV4, the simulated account's test keys), a Bedrock API key
(Bearer), and a Secret whose secret key is wrong (every call fails its signature check, as on AWS).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp import test_utils

from modelyard_simulator.aws_keys import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
from modelyard_simulator.bedrock_auth import TEST_API_KEY
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import SCENARIOS
from tests.harness import DEMO_KEY, GatewayFactory, secret

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"
#: Fast failure handling, so failing cases take milliseconds.
POLICY: dict[str, Any] = {
    "retry": {"attempts": 1, "backoff": {"initial": "10ms", "max": "20ms"}},
    "timeouts": {"connect": "1s", "firstToken": "2s", "idle": "2s", "total": "5s"},
    "circuitBreaker": {"minRequests": 1000},
}
TRIGGERS = ["rateLimit", "serverError", "overloaded", "timeout"]


def _doc(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def credential(name: str, simulator_url: str, **auth: Any) -> dict[str, Any]:
    spec = {"provider": "bedrock", "region": "us-east-1", "baseURL": simulator_url, **auth}
    return _doc("ProviderCredential", name, spec)


def route(name: str, *targets: tuple[str, str], fallback: bool = False) -> dict[str, Any]:
    """A route over ``(credential, model)`` targets in priority order."""
    bound = [{"credentialRef": {"name": c}, "model": m, "priority": k} for k, (c, m) in enumerate(targets)]
    spec: dict[str, Any] = {"model": name, "targets": bound, **POLICY}
    spec["fallbackOn"] = TRIGGERS if fallback else []
    return _doc("ModelRoute", name, spec)


def manifests(simulator_url: str) -> list[dict[str, Any]]:
    keys = {"accessKeyId": TEST_ACCESS_KEY_ID, "secretAccessKey": TEST_SECRET_ACCESS_KEY}
    wrong = {**keys, "secretAccessKey": "not-the-secret-at-all"}
    return [
        secret("bedrock-keys", keys),
        secret("bedrock-wrong-keys", wrong),
        secret("bedrock-api-key", {"apiKey": TEST_API_KEY}),
        credential("sim-bedrock", simulator_url, aws={"accessKeySecretRef": {"name": "bedrock-keys"}}),
        credential("sim-bedrock-wrong", simulator_url, aws={"accessKeySecretRef": {"name": "bedrock-wrong-keys"}}),
        credential("sim-bedrock-keyed", simulator_url, secretRef={"name": "bedrock-api-key", "key": "apiKey"}),
        route("bedrock-claude", ("sim-bedrock", CLAUDE)),
        route("bedrock-nova", ("sim-bedrock", NOVA)),
        route("bedrock-titan", ("sim-bedrock", TITAN)),
        route("bedrock-cohere", ("sim-bedrock", COHERE)),
        route("bedrock-keyed", ("sim-bedrock-keyed", NOVA)),
        route("bedrock-wrong", ("sim-bedrock-wrong", NOVA)),
        route("bedrock-first", ("sim-bedrock", CLAUDE), ("sim-openai", "backup"), fallback=True),
        route("openai-first", ("sim-openai", "primary"), ("sim-bedrock", NOVA), fallback=True),
    ]


def script(simulator: test_utils.TestServer, model: str, **behaviour: object) -> None:
    """Make the simulated upstream ``model`` behave like this for every request."""
    simulator.app[SCENARIOS].models[model] = Behaviour().overlay(behaviour)


@pytest.fixture
async def bedrock_gateway(gateway_factory: GatewayFactory, simulator: test_utils.TestServer) -> test_utils.TestServer:
    return await gateway_factory(*manifests(str(simulator.make_url("")).rstrip("/")))


@pytest.fixture
async def sdk(bedrock_gateway: test_utils.TestServer) -> AsyncIterator[openai.AsyncOpenAI]:
    url = str(bedrock_gateway.make_url("/v1"))
    async with openai.AsyncOpenAI(base_url=url, api_key=DEMO_KEY, max_retries=0) as client:
        yield client
