"""Vertex AI access tokens from a service-account key: fetched once and reused, one fetch for concurrent
requests, refreshed before expiry, a new key used as soon as a new table names it, and clear errors for a bad
key or a token Google no longer honours. The simulator counts the tokens it issues."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from aiohttp import test_utils

from modelyard_proxy.keys import STORE
from modelyard_simulator import RequestLog
from modelyard_simulator.google_auth import GOOGLE_AUTH, GoogleAuthority
from modelyard_simulator.google_keys import ServiceAccountKey, service_account_key
from tests.cli.test_cli import accepts_connections, free_port, wait_for
from tests.gateway.vertex_setup import manifests, table
from tests.harness import DEMO_KEY, GatewayFactory

HELLO: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def authority(simulator: test_utils.TestServer) -> GoogleAuthority:
    return simulator.app[GOOGLE_AUTH]


@pytest.fixture
def simulator_url(simulator: test_utils.TestServer) -> str:
    return str(simulator.make_url("")).rstrip("/")


@pytest.fixture
def key(simulator_url: str, authority: GoogleAuthority) -> ServiceAccountKey:
    return service_account_key(f"{simulator_url}/token").trusted_by(authority)


async def sdk_for(gateway: test_utils.TestServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0)


async def ask(client: openai.AsyncOpenAI, model: str = "vertex-gemini") -> None:
    await client.chat.completions.create(model=model, messages=HELLO)


def bearer_sent(upstream_log: RequestLog) -> str | None:
    """The token the last Vertex call carried (token requests interleave with calls)."""
    calls = [entry for entry in upstream_log if "/publishers/" in entry.path]
    return calls[-1].header("authorization")


async def wait_for_tokens(authority: GoogleAuthority, count: int) -> None:
    """Until ``count`` tokens were issued (a background refresh runs beside the requests)."""
    async with asyncio.timeout(5):
        while len(authority.issued) < count:  # noqa: ASYNC110  # the simulator's count is a plain list
            await asyncio.sleep(0.01)


async def test_a_token_is_fetched_once_and_reused_by_both_publishers(
    gateway_factory: GatewayFactory, simulator_url: str, key: ServiceAccountKey, authority: GoogleAuthority
) -> None:
    gateway = await gateway_factory(*manifests(simulator_url, key.json))
    async with await sdk_for(gateway) as client:
        for _ in range(3):
            await ask(client, "vertex-gemini")
        await ask(client, "vertex-claude")
    # One credential per publisher, each with its own token: two fetches for four requests.
    assert authority.issued == [key.email, key.email]


async def test_concurrent_first_requests_share_one_token_fetch(
    gateway_factory: GatewayFactory, simulator_url: str, key: ServiceAccountKey, authority: GoogleAuthority
) -> None:
    gateway = await gateway_factory(*manifests(simulator_url, key.json))
    async with await sdk_for(gateway) as client:
        await asyncio.gather(*(ask(client) for _ in range(12)))
    assert authority.issued == [key.email]


async def test_a_token_near_expiry_is_refreshed_in_the_background_and_an_expired_one_is_replaced(
    gateway_factory: GatewayFactory,
    simulator_url: str,
    key: ServiceAccountKey,
    authority: GoogleAuthority,
    upstream_log: RequestLog,
) -> None:
    authority.token_lifetime = 2  # refreshed from 1 s on, not sent from 1.8 s on
    gateway = await gateway_factory(*manifests(simulator_url, key.json))
    async with await sdk_for(gateway) as client:
        await ask(client)
        first = bearer_sent(upstream_log)
        await asyncio.sleep(1.1)
        await ask(client)  # served with the cached token, which starts the refresh
        assert bearer_sent(upstream_log) == first
        await wait_for_tokens(authority, 2)
        await ask(client)
        second = bearer_sent(upstream_log)
        assert second != first
        await asyncio.sleep(2.1)  # past the second token's whole life: it must be replaced
        await ask(client)
    assert bearer_sent(upstream_log) not in {first, second}
    assert len(authority.issued) == 3


async def test_a_new_table_with_a_rotated_key_uses_it_without_a_restart(
    gateway_factory: GatewayFactory, simulator_url: str, key: ServiceAccountKey, authority: GoogleAuthority
) -> None:
    gateway = await gateway_factory(*manifests(simulator_url, key.json))
    rotated = service_account_key(f"{simulator_url}/token", name="vertex-rotated").trusted_by(authority)
    async with await sdk_for(gateway) as client:
        await ask(client)
        gateway.app[STORE].apply(table(simulator_url, rotated, generation=2))
        await ask(client)
    assert authority.issued == [key.email, rotated.email]


#: Passes the compiler's check of the Secret (JSON, the fields, a PEM marker) but is no key.
NOT_A_KEY = (
    '{"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com", "token_uri": "http://x", '
    '"private_key": "-----BEGIN PRIVATE KEY-----\\nc2VjcmV0LWJ5dGVz\\n-----END PRIVATE KEY-----\\n"}'
)


async def test_a_malformed_key_is_a_clear_error_logged_once_without_the_key(
    gateway_factory: GatewayFactory, simulator_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    reason = "service-account key cannot be loaded"
    gateway = await gateway_factory(*manifests(simulator_url, NOT_A_KEY))
    async with await sdk_for(gateway) as client:
        for _ in range(2):
            with pytest.raises(openai.APIStatusError) as caught:
                await ask(client)
            assert (caught.value.status_code, caught.value.code) == (502, "upstream_auth_failed")
            assert reason in caught.value.message
            assert "vertex-google" in caught.value.message
    assert "c2VjcmV0LWJ5dGVz" not in caught.value.message
    logged = [r.getMessage() for r in caplog.records if "has no access token" in r.getMessage()]
    assert len(logged) == 1
    assert reason in logged[0]
    assert "c2VjcmV0LWJ5dGVz" not in caplog.text


async def test_a_token_google_no_longer_honours_is_an_auth_error(
    gateway_factory: GatewayFactory, simulator_url: str, key: ServiceAccountKey, authority: GoogleAuthority
) -> None:
    gateway = await gateway_factory(*manifests(simulator_url, key.json))
    async with await sdk_for(gateway) as client:
        await ask(client, "vertex-claude")
        authority.revoke_all()
        with pytest.raises(openai.APIStatusError) as caught:
            await ask(client, "vertex-claude")
    assert (caught.value.status_code, caught.value.code) == (502, "upstream_auth_failed")
    assert "vertex-anthropic" in caught.value.message
    assert "invalid authentication credentials" in caught.value.message


async def test_a_key_google_refuses_is_an_auth_error(
    gateway_factory: GatewayFactory, simulator_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = service_account_key(f"{simulator_url}/token", name="unknown-account")  # never trusted
    gateway = await gateway_factory(*manifests(simulator_url, stranger.json))
    caplog.set_level(logging.WARNING)
    async with await sdk_for(gateway) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await ask(client)
    assert (caught.value.status_code, caught.value.code) == (502, "upstream_auth_failed")
    assert "invalid_grant" in caught.value.message


@contextlib.contextmanager
def tinyproxy(folder: Path) -> Iterator[str]:
    """A forward proxy (it marks what it forwards with ``Via: ... tinyproxy``); its URL."""
    port = free_port()
    config = folder / "tinyproxy.conf"
    config.write_text(f"Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nLogLevel Error\n")
    proxy = subprocess.Popen(["tinyproxy", "-d", "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: accepts_connections(port))
        yield f"http://127.0.0.1:{port}"
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


async def test_a_keys_token_request_leaves_through_the_credentials_proxy(
    gateway_factory: GatewayFactory,
    simulator_url: str,
    key: ServiceAccountKey,
    upstream_log: RequestLog,
    tmp_path: Path,
) -> None:
    with tinyproxy(tmp_path) as proxy_url:
        docs = manifests(simulator_url, key.json)
        for doc in docs:
            if doc["kind"] == "ProviderCredential":
                doc["spec"]["egress"] = {"proxy": {"url": proxy_url}}
        gateway = await gateway_factory(*docs)
        async with await sdk_for(gateway) as client:
            await ask(client)
    token_requests = [entry for entry in upstream_log if entry.path == "/token"]
    assert len(token_requests) == 1
    assert "tinyproxy" in (token_requests[0].header("via") or "")
