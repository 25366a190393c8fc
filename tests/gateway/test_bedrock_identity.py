"""Bedrock routes whose credential has no keys answer, through the official SDK, with the gateway pod's own AWS
identity (IRSA, EKS Pod Identity), signed for the credential's region, and keep answering across a refresh of
its keys; without any identity the client is told how to fix it. Static keys rotated by a new table (a new
Secret pushed) sign the next call, no restart, while the simulated AWS refuses the old ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import test_utils

from modelyard_proxy.cloudauth.aws_identity import pod_identity
from modelyard_proxy.keys import STORE
from modelyard_routing import compile_inventory
from modelyard_simulator import RequestLog
from modelyard_simulator.aws_keys import AWS_KEYRING, IssuedKey
from tests.awsenv import ENV_REGION, Endpoint, endpoint, no_aws_identity
from tests.gateway.bedrock_setup import NOVA, credential, route
from tests.harness import DEMO_KEY, GatewayFactory, example_inventory, secret

__all__ = ["endpoint"]  # a fixture

#: Keys just outside botocore's 15-minute advisory window (a second, plus under a second as expiries are rounded
#: up to whole seconds): due for a refresh in the background once ``DUE_AFTER`` seconds have passed.
DUE_SOON = timedelta(minutes=15, seconds=1)
DUE_AFTER = 2.1


@pytest.fixture(autouse=True)
async def fresh_pod_identity() -> AsyncIterator[None]:
    """Each test's gateway starts with the process's chain identity unused, and leaves no fetch running."""
    pod_identity.cache_clear()
    yield
    if pod_identity.cache_info().currsize:
        await pod_identity().aclose()
    pod_identity.cache_clear()


def simulator_url(simulator: test_utils.TestServer) -> str:
    return str(simulator.make_url("")).rstrip("/")


@pytest.fixture
async def sdk(gateway_factory: GatewayFactory, simulator: test_utils.TestServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """The OpenAI SDK on a gateway with the route ``bedrock-pod``, whose credential has no keys."""
    gateway = await gateway_factory(
        credential("sim-bedrock-pod", simulator_url(simulator)), route_to("sim-bedrock-pod")
    )
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as client:
        yield client


def route_to(credential_name: str) -> dict[str, Any]:
    return route(credential_name.removeprefix("sim-"), (credential_name, NOVA))


async def ask(sdk: openai.AsyncOpenAI, model: str = "bedrock-pod") -> str:
    completion = await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}])
    return completion.choices[0].message.content or ""


def signed_with(upstream_log: RequestLog) -> str:
    """The access key the last Bedrock call was signed with (and checked against by the simulator)."""
    last = [request for request in upstream_log if request.path.startswith("/model/")][-1]
    return last.headers["authorization"].removeprefix("AWS4-HMAC-SHA256 Credential=").partition("/")[0]


async def test_a_route_without_keys_answers_with_the_pods_identity(
    endpoint: Endpoint, sdk: openai.AsyncOpenAI, upstream_log: RequestLog
) -> None:
    assert await ask(sdk) == "echo: hello"
    sent = upstream_log.last()
    assert sent.path == f"/model/{NOVA}/converse"
    key = signed_with(upstream_log)
    assert key.startswith("ASIA")
    assert "/us-east-1/bedrock/aws4_request" in sent.headers["authorization"]  # the credential's region
    assert ENV_REGION not in sent.headers["authorization"]
    issued = endpoint.simulator.app[AWS_KEYRING].lookup(key)
    assert issued is not None
    assert sent.headers["x-amz-security-token"] == issued.session_token
    assert await ask(sdk) == "echo: hello"
    assert signed_with(upstream_log) == key
    assert endpoint.fetches() == 1  # the keys are fetched once, not per request


async def test_answers_keep_coming_across_a_refresh_of_the_keys(
    endpoint: Endpoint, sdk: openai.AsyncOpenAI, upstream_log: RequestLog
) -> None:
    endpoint.issue_for(DUE_SOON)
    await ask(sdk)
    first = signed_with(upstream_log)
    await asyncio.sleep(DUE_AFTER)  # the keys enter botocore's advisory window
    await ask(sdk)  # answered with the cached keys, while they are refreshed in the background
    assert signed_with(upstream_log) == first
    await pod_identity().aclose()  # the refresh lands
    assert endpoint.fetches() == 2
    endpoint.simulator.app[AWS_KEYRING].revoke(first)  # the old keys stop working, as expired keys would
    assert await ask(sdk) == "echo: hello"
    assert signed_with(upstream_log) not in {first, ""}


async def test_no_identity_at_all_tells_the_client_how_to_fix_it(
    sdk: openai.AsyncOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, upstream_log: RequestLog
) -> None:
    no_aws_identity(monkeypatch, tmp_path)
    with pytest.raises(openai.InternalServerError) as refused:
        await ask(sdk)
    assert refused.value.status_code == 503
    assert refused.value.code == "upstream_auth_unavailable"
    assert "aws.accessKeySecretRef" in refused.value.message
    assert "IRSA" in refused.value.message
    assert len(upstream_log) == 0  # nothing unsigned reached Bedrock


async def test_a_route_falls_back_when_the_pods_identity_gives_no_keys(
    gateway_factory: GatewayFactory,
    simulator: test_utils.TestServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    upstream_log: RequestLog,
) -> None:
    """Another target answers: the one whose keys cannot be had is skipped like an unreachable upstream."""
    no_aws_identity(monkeypatch, tmp_path)
    fallback = route("pod-first", ("sim-bedrock-pod", NOVA), ("sim-openai", "backup"))
    fallback["spec"]["fallbackOn"] = ["connectError"]  # the default list has it too
    gateway = await gateway_factory(credential("sim-bedrock-pod", simulator_url(simulator)), fallback)
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as client:
        answer = await client.chat.completions.with_raw_response.create(
            model="pod-first", messages=[{"role": "user", "content": "hello"}]
        )
    assert answer.parse().choices[0].message.content == "echo: hello"
    assert [request.path for request in upstream_log] == ["/v1/chat/completions"]


async def test_a_rotated_static_key_secret_signs_the_next_call_without_a_restart(
    gateway_factory: GatewayFactory, simulator: test_utils.TestServer, upstream_log: RequestLog
) -> None:
    keyring = simulator.app[AWS_KEYRING]
    keyring.add("AKIAROTATIONOLD00001", IssuedKey("old-secret-key"))
    keyring.add("AKIAROTATIONNEW00002", IssuedKey("new-secret-key"))

    def manifests(key_id: str, secret_key: str) -> list[dict[str, Any]]:
        return [
            secret("bedrock-rotating", {"accessKeyId": key_id, "secretAccessKey": secret_key}),
            credential(
                "sim-bedrock-static",
                simulator_url(simulator),
                aws={"accessKeySecretRef": {"name": "bedrock-rotating"}},
            ),
            route_to("sim-bedrock-static"),
        ]

    gateway = await gateway_factory(*manifests("AKIAROTATIONOLD00001", "old-secret-key"))
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as sdk:
        assert await ask(sdk, "bedrock-static") == "echo: hello"
        assert signed_with(upstream_log) == "AKIAROTATIONOLD00001"

        keyring.revoke("AKIAROTATIONOLD00001")  # rotated at AWS: the old key is refused...
        with pytest.raises(openai.InternalServerError) as refused:
            await ask(sdk, "bedrock-static")
        assert refused.value.code == "upstream_auth_failed"

        inventory = example_inventory(simulator_url(simulator))  # ...until the new Secret's table is pushed
        for doc in manifests("AKIAROTATIONNEW00002", "new-secret-key"):
            inventory.add_document(doc, "test")
        gateway.app[STORE].apply(compile_inventory(inventory, generation=2).table)
        assert await ask(sdk, "bedrock-static") == "echo: hello"
        assert signed_with(upstream_log) == "AKIAROTATIONNEW00002"
