"""Vertex AI credentials without a key use the pod's application default credentials: on GKE with Workload
Identity, the metadata server. A real ``modelyard serve`` process finds the simulator's metadata server through
``GCE_METADATA_HOST``/``GCE_METADATA_IP`` (google-auth reads them when it loads), or finds none at all."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.cli.test_cli import free_port, get_json, modelyard, process, running_simulator, wait_for
from tests.gateway.vertex_setup import manifests
from tests.harness import DEMO_KEY, copy_examples

pytestmark = pytest.mark.timeout(90)

METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_simulator(tmp_path_factory.mktemp("sim") / "simulator.log") as url:
        yield url


@contextlib.contextmanager
def serving(simulator: str, tmp_path: Path, metadata_host: str) -> Iterator[openai.OpenAI]:
    """``modelyard serve`` on the examples and keyless Vertex credentials, its metadata server ``metadata_host``."""
    folder = copy_examples(tmp_path / "manifests", simulator)
    (folder / "vertex.yaml").write_text(yaml.safe_dump_all(manifests(simulator, "", key=False)))
    port = free_port()
    env = {
        "GCE_METADATA_HOST": metadata_host,
        "GCE_METADATA_IP": metadata_host,
        "GCE_METADATA_DETECT_RETRIES": "1",
        "GOOGLE_APPLICATION_CREDENTIALS": "",
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # no gcloud user credentials either
    }
    args = modelyard("serve", "--manifests", str(folder), "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
    with process(args, tmp_path / "gateway.log", env):
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: get_json(f"{base}/readyz")[0] == 200)
        with openai.OpenAI(base_url=f"{base}/v1", api_key=DEMO_KEY, max_retries=0) as client:
            yield client


def metadata_token_requests(simulator: str) -> list[dict[str, Any]]:
    """The token requests the simulator's metadata server received (its log is a JSON list)."""
    with urllib.request.urlopen(f"{simulator}/_simulator/requests", timeout=5) as response:
        requests: list[dict[str, Any]] = json.loads(response.read())
    return [r for r in requests if r["path"] == METADATA_TOKEN_PATH]


def test_workload_identity_tokens_come_from_the_metadata_server(simulator: str, tmp_path: Path) -> None:
    with serving(simulator, tmp_path, simulator.removeprefix("http://")) as client:
        for model in ("vertex-gemini", "vertex-gemini", "vertex-claude"):
            completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
            assert "hi" in (completion.choices[0].message.content or "")
    fetched = metadata_token_requests(simulator)
    assert len(fetched) == 2  # one token per credential, reused
    assert all(r["headers"]["metadata-flavor"] == "Google" for r in fetched)


def test_without_a_key_or_a_metadata_server_the_error_says_what_to_configure(simulator: str, tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens there
    with serving(simulator, tmp_path, nowhere) as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="vertex-gemini", messages=[{"role": "user", "content": "hi"}])
    assert (caught.value.status_code, caught.value.code) == (502, "upstream_auth_failed")
    assert "secretRef" in caught.value.message
    assert "Workload Identity" in caught.value.message
