"""Vertex AI manifests for the gateway tests: a service-account key Secret, a credential per publisher, routes."""

from __future__ import annotations

from typing import Any

from aiohttp import test_utils

from modelyard_routing import RoutingTable, compile_inventory
from modelyard_simulator.google_auth import GOOGLE_AUTH
from modelyard_simulator.google_keys import PROJECT, ServiceAccountKey, service_account_key
from tests.harness import GatewayFactory, example_inventory, route, secret

REGION = "us-central1"
CLAUDE = "claude-sonnet-4-5@20250929"
GEMINI = "gemini-2.5-flash"
EMBEDDING = "text-embedding-005"
SECRET = "vertex-service-account"
#: Public model name -> the path Vertex is called on for a whole answer.
PATHS = {
    "vertex-claude": f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/anthropic/models/{CLAUDE}:rawPredict",
    "vertex-gemini": f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/google/models/{GEMINI}:generateContent",
}
STREAM_PATHS = {
    "vertex-claude": PATHS["vertex-claude"].replace(":rawPredict", ":streamRawPredict"),
    "vertex-gemini": PATHS["vertex-gemini"].replace(":generateContent", ":streamGenerateContent"),
}


def credential(name: str, publisher: str, simulator_url: str, *, key: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "provider": "vertex-ai",
        "baseURL": f"{simulator_url}/v1",
        "region": REGION,
        "vertex": {"project": PROJECT, "publisher": publisher},
    }
    if key:
        spec["secretRef"] = {"name": SECRET, "key": "key.json"}
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ProviderCredential",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def manifests(simulator_url: str, key_json: str, *, key: bool = True) -> list[dict[str, Any]]:
    """Claude and Gemini on Vertex with one service-account key (or none: application default credentials)."""
    return [
        *([secret(SECRET, {"key.json": key_json})] if key else []),
        credential("vertex-anthropic", "anthropic", simulator_url, key=key),
        credential("vertex-google", "google", simulator_url, key=key),
        route("vertex-claude", ("vertex-anthropic", CLAUDE)),
        route("vertex-gemini", ("vertex-google", GEMINI)),
        route("vertex-embedding", ("vertex-google", EMBEDDING)),
        route("claude-anywhere", ("vertex-anthropic", CLAUDE), ("sim-anthropic", "claude-sonnet-4-5")),
    ]


def table(simulator_url: str, key: ServiceAccountKey, generation: int) -> RoutingTable:
    """The examples and the Vertex manifests with ``key``, compiled as the gateway fixture compiles them."""
    inventory = example_inventory(simulator_url)
    for doc in manifests(simulator_url, key.json):
        inventory.add_document(doc, "test")
    return compile_inventory(inventory, generation=generation).table


async def vertex_gateway(gateway_factory: GatewayFactory, simulator: test_utils.TestServer) -> test_utils.TestServer:
    """A gateway serving the examples and Vertex AI, with a service-account key the simulator trusts."""
    url = str(simulator.make_url("")).rstrip("/")
    key = service_account_key(f"{url}/token").trusted_by(simulator.app[GOOGLE_AUTH])
    return await gateway_factory(*manifests(url, key.json))
