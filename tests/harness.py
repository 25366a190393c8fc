"""Helpers the tests share: example manifests pointed at a live simulator, and loopback servers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import test_utils, web

from modelyard_proxy.keys import AUDIT
from modelyard_routing import Inventory
from modelyard_routing.manifests import manifest_files

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "standalone"
DEMO_KEY = "sk-modelyard-demo"
EXAMPLE_SIMULATOR_URL = "http://127.0.0.1:9100"


async def start_server(app: web.Application) -> test_utils.TestServer:
    """Serve ``app`` on a free loopback port."""
    server = test_utils.TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def copy_examples(folder: Path, simulator_url: str) -> Path:
    """The standalone example manifests written into ``folder`` (made if missing), pointed at ``simulator_url``."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in EXAMPLES.glob("*.yaml"):
        (folder / path.name).write_text(path.read_text().replace(EXAMPLE_SIMULATOR_URL, simulator_url))
    return folder


def example_inventory(simulator_url: str, directory: Path = EXAMPLES) -> Inventory:
    """The standalone examples, pointed at ``simulator_url`` instead of the demo's fixed port."""
    inventory = Inventory()
    for path in manifest_files(directory):
        text = path.read_text().replace(EXAMPLE_SIMULATOR_URL, simulator_url)
        for doc in yaml.safe_load_all(text):
            if doc:
                inventory.add_document(doc, str(path))
    return inventory


GatewayFactory = Callable[..., Awaitable[test_utils.TestServer]]


def secret(name: str, data: dict[str, str], kind: str = "Opaque") -> dict[str, Any]:
    """A Secret of the ``default`` namespace, as a manifest the gateway's standalone inventory reads."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        "type": kind,
        "stringData": data,
    }


def route(name: str, *targets: tuple[str, str]) -> dict[str, Any]:
    """A route over ``(credential, upstream model)`` targets, in priority order."""
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "model": name,
            "targets": [
                {"credentialRef": {"name": credential}, "model": model, "priority": priority}
                for priority, (credential, model) in enumerate(targets)
            ],
        },
    }


def audit_records(app: web.Application, captured: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The audit lines ``app`` wrote to stderr so far (flushed now), as records."""
    app[AUDIT].flush()
    marker = "INFO modelyard.audit: "
    return [
        orjson.loads(line.partition(marker)[2]) for line in captured.readouterr().err.splitlines() if marker in line
    ]
