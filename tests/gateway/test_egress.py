"""Egress through the official OpenAI SDK: the gateway reaches an https simulator (a private CA from trustme)
through a real forward proxy (tinyproxy), or not, as its settings say; failures on the way out are clear 502s.

What the proxy saw is read from its own log: a CONNECT line per tunnel, the absolute-form line per plain http
request, nothing at all for a host in ``NO_PROXY``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import anthropic
import openai
import pytest
import trustme
from aiohttp import test_utils

from modelyard_proxy.base.settings import ProxySettings
from modelyard_simulator import REQUEST_LOG, RequestLog
from modelyard_simulator import create_app as create_simulator
from tests.forwardproxy import PROXY_PASSWORD, PROXY_PASSWORD_IN_URL, ProxyFactory, tinyproxies
from tests.harness import DEMO_KEY, GatewayFactory, secret
from tests.storeserver import free_port

__all__ = ["tinyproxies"]  # the fixture, imported for the tests below

WHERE = "upstream openai (default/sim-openai)"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    """The simulator's private CA: trusted by the gateway only where a test gives it the bundle."""
    return trustme.CA()


@pytest.fixture
def ca_bundle(authority: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "private-ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def https_simulator(authority: trustme.CA) -> AsyncIterator[test_utils.TestServer]:
    """The provider simulator over https, its certificate for 127.0.0.1 signed by the private CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    server = test_utils.TestServer(create_simulator(), host="127.0.0.1")
    await server.start_server(ssl=context)
    yield server
    await server.close()


def base_url(server: test_utils.TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


def settings(
    *, https_proxy: str = "", http_proxy: str = "", no_proxy: str = "", ca_bundle: Path | None = None
) -> ProxySettings:
    """Gateway settings on a free loopback port with these egress settings (none from the environment)."""
    return ProxySettings(
        host="127.0.0.1", port=0, https_proxy=https_proxy, http_proxy=http_proxy, no_proxy=no_proxy, ca_bundle=ca_bundle
    )


def sdk(gateway: test_utils.TestServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0)


async def chat(gateway: test_utils.TestServer, text: str = "hello through the proxy", model: str = "gpt-4o") -> str:
    async with sdk(gateway) as client:
        completion = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": text}], max_tokens=20
        )
    return completion.choices[0].message.content or ""


async def failed_chat(gateway: test_utils.TestServer, model: str = "gpt-4o") -> str:
    """The message of the error the SDK raised: a 502 ``upstream_unreachable``."""
    async with sdk(gateway) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_unreachable"
    assert isinstance(caught.value.body, dict)
    message: str = caught.value.body["message"]
    assert PROXY_PASSWORD not in caught.value.response.text
    assert PROXY_PASSWORD_IN_URL not in caught.value.response.text
    return message


def simulator_log(server: test_utils.TestServer) -> RequestLog:
    return server.app[REQUEST_LOG]


async def test_https_upstream_through_the_gateways_proxy_tunnel(
    https_simulator: test_utils.TestServer, ca_bundle: Path, tinyproxies: ProxyFactory, gateway_factory: GatewayFactory
) -> None:
    """HTTPS_PROXY with credentials, MODELYARD_CA_BUNDLE for the private CA: answers, streams too, through one
    CONNECT tunnel kept alive."""
    proxy = tinyproxies(connect_ports=[https_simulator.port], auth=True)
    gateway = await gateway_factory(
        settings=settings(https_proxy=proxy.url, ca_bundle=ca_bundle), upstream_url=base_url(https_simulator)
    )
    assert "hello through the proxy" in await chat(gateway)
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "streamed through the tunnel"}], stream=True
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert "streamed through the tunnel" in text
    assert proxy.requests() == [("CONNECT", f"127.0.0.1:{https_simulator.port}")]
    assert [entry.path for entry in simulator_log(https_simulator)][-2:] == ["/v1/chat/completions"] * 2


async def test_plain_http_upstream_through_the_gateways_proxy(
    simulator: test_utils.TestServer, tinyproxies: ProxyFactory, gateway_factory: GatewayFactory
) -> None:
    proxy = tinyproxies(connect_ports=[], auth=True)
    gateway = await gateway_factory(settings=settings(http_proxy=proxy.url))
    assert "plain and proxied" in await chat(gateway, "plain and proxied")
    assert proxy.requests() == [("POST", f"http://127.0.0.1:{simulator.port}/v1/chat/completions")]


async def test_no_proxy_hosts_are_called_directly(
    https_simulator: test_utils.TestServer, ca_bundle: Path, tinyproxies: ProxyFactory, gateway_factory: GatewayFactory
) -> None:
    proxy = tinyproxies(connect_ports=[https_simulator.port])
    gateway = await gateway_factory(
        settings=settings(https_proxy=proxy.url, no_proxy="localhost,127.0.0.0/8", ca_bundle=ca_bundle),
        upstream_url=base_url(https_simulator),
    )
    assert "direct" in await chat(gateway, "direct")
    assert proxy.requests() == []
    assert len(simulator_log(https_simulator)) == 1


async def test_proxy_wanting_credentials_is_a_clear_502(
    https_simulator: test_utils.TestServer, ca_bundle: Path, tinyproxies: ProxyFactory, gateway_factory: GatewayFactory
) -> None:
    """Without the user and password it wants, the proxy answers CONNECT 407: the client is told so."""
    proxy = tinyproxies(connect_ports=[https_simulator.port], auth=True)
    gateway = await gateway_factory(
        settings=settings(https_proxy=proxy.address, ca_bundle=ca_bundle), upstream_url=base_url(https_simulator)
    )
    assert await failed_chat(gateway) == (
        f"{WHERE} could not be reached: its proxy {proxy.address} refused the tunnel to "
        f"127.0.0.1:{https_simulator.port}: 407 Proxy Authentication Required"
    )
    assert len(simulator_log(https_simulator)) == 0


async def test_unreachable_proxy_is_named_without_its_password(
    https_simulator: test_utils.TestServer, ca_bundle: Path, gateway_factory: GatewayFactory
) -> None:
    port = free_port()  # nothing listens there
    gateway = await gateway_factory(
        settings=settings(https_proxy=f"http://gateway:{PROXY_PASSWORD_IN_URL}@127.0.0.1:{port}", ca_bundle=ca_bundle),
        upstream_url=base_url(https_simulator),
    )
    assert await failed_chat(gateway) == (
        f"{WHERE} could not be reached: its proxy http://127.0.0.1:{port} could not be reached (ConnectionRefusedError)"
    )


async def test_a_certificate_the_gateway_does_not_trust_says_so(
    https_simulator: test_utils.TestServer, gateway_factory: GatewayFactory
) -> None:
    gateway = await gateway_factory(settings=settings(), upstream_url=base_url(https_simulator))
    message = await failed_chat(gateway)
    assert message.startswith(f"{WHERE} could not be reached: its certificate is not trusted (")
    assert "egress.caBundleSecretRef" in message
    assert len(simulator_log(https_simulator)) == 0


# -- a credential's own egress settings (spec.egress) -----------------------------------------------------------


def routed_credential(name: str, base: str, egress: Mapping[str, object]) -> list[dict[str, object]]:
    """An OpenAI credential with ``egress`` and a route ``name`` to it."""
    return [
        {
            "apiVersion": "modelyard.io/v1alpha1",
            "kind": "ProviderCredential",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "provider": "openai",
                "baseURL": f"{base}/v1",
                "secretRef": {"name": "simulator-keys", "key": "openai"},
                "egress": egress,
            },
        },
        {
            "apiVersion": "modelyard.io/v1alpha1",
            "kind": "ModelRoute",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"model": name, "targets": [{"credentialRef": {"name": name}, "model": "gpt-4o-2024-08-06"}]},
        },
    ]


async def test_a_credentials_proxy_from_its_secret_overrides_the_gateways(
    https_simulator: test_utils.TestServer,
    ca_bundle: Path,
    authority: trustme.CA,
    tinyproxies: ProxyFactory,
    gateway_factory: GatewayFactory,
) -> None:
    """``egress.proxy.urlSecretRef`` (with the proxy's credentials) wins over HTTPS_PROXY and NO_PROXY; the
    other routes still go the gateway's way."""
    gateways_proxy = tinyproxies(connect_ports=[https_simulator.port])
    own_proxy = tinyproxies(connect_ports=[https_simulator.port], auth=True)
    upstream = base_url(https_simulator)
    gateway = await gateway_factory(
        secret("team-proxy", {"url": own_proxy.url}),
        *routed_credential("via-own-proxy", upstream, {"proxy": {"urlSecretRef": {"name": "team-proxy"}}}),
        settings=settings(https_proxy=gateways_proxy.url, no_proxy="127.0.0.1", ca_bundle=ca_bundle),
        upstream_url=upstream,
    )
    assert "own way out" in await chat(gateway, "own way out", model="via-own-proxy")
    assert "the gateway's way" in await chat(gateway, "the gateway's way", model="gpt-4o")
    assert own_proxy.requests() == [("CONNECT", f"127.0.0.1:{https_simulator.port}")]
    assert gateways_proxy.requests() == []  # NO_PROXY sent gpt-4o direct


async def test_a_direct_credential_bypasses_the_gateways_proxy(
    https_simulator: test_utils.TestServer, ca_bundle: Path, gateway_factory: GatewayFactory
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    upstream = base_url(https_simulator)
    gateway = await gateway_factory(
        *routed_credential("direct", upstream, {"proxy": {"direct": True}}),
        settings=settings(https_proxy=unreachable, ca_bundle=ca_bundle),
        upstream_url=upstream,
    )
    assert "straight there" in await chat(gateway, "straight there", model="direct")
    assert await failed_chat(gateway) == (
        f"{WHERE} could not be reached: its proxy {unreachable} could not be reached (ConnectionRefusedError)"
    )


async def test_a_credentials_ca_bundle_trusts_its_private_ca_and_no_other_credentials(
    https_simulator: test_utils.TestServer, authority: trustme.CA, gateway_factory: GatewayFactory
) -> None:
    """``caBundleSecretRef``: the vLLM behind the internal CA is accepted for that credential, refused for the
    one without it."""
    upstream = base_url(https_simulator)
    gateway = await gateway_factory(
        secret("internal-ca", {"ca.crt": authority.cert_pem.bytes().decode()}),
        *routed_credential("internal-vllm", upstream, {"caBundleSecretRef": {"name": "internal-ca"}}),
        settings=settings(),
        upstream_url=upstream,
    )
    assert "trusted" in await chat(gateway, "trusted", model="internal-vllm")
    assert "its certificate is not trusted" in await failed_chat(gateway)


@pytest.fixture
async def mtls_simulator(authority: trustme.CA) -> AsyncIterator[test_utils.TestServer]:
    """The simulator over https, accepting only clients with a certificate from the private CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED
    authority.configure_trust(context)
    server = test_utils.TestServer(create_simulator(), host="127.0.0.1")
    await server.start_server(ssl=context)
    yield server
    await server.close()


async def test_a_client_certificate_opens_an_mtls_upstream(
    mtls_simulator: test_utils.TestServer,
    authority: trustme.CA,
    tinyproxies: ProxyFactory,
    gateway_factory: GatewayFactory,
) -> None:
    """``clientCertificateSecretRef`` (a kubernetes.io/tls Secret) is presented, through the gateway's proxy too;
    the same upstream refuses the credential without one."""
    proxy = tinyproxies(connect_ports=[mtls_simulator.port])
    issued = authority.issue_cert("modelyard-gateway")
    upstream = base_url(mtls_simulator)
    ca_ref = {"caBundleSecretRef": {"name": "internal-ca"}}
    gateway = await gateway_factory(
        secret("internal-ca", {"ca.crt": authority.cert_pem.bytes().decode()}),
        secret(
            "gateway-client",
            {
                "tls.crt": b"".join(pem.bytes() for pem in issued.cert_chain_pems).decode(),
                "tls.key": issued.private_key_pem.bytes().decode(),
            },
            kind="kubernetes.io/tls",
        ),
        *routed_credential("mtls", upstream, {**ca_ref, "clientCertificateSecretRef": {"name": "gateway-client"}}),
        *routed_credential("anonymous", upstream, ca_ref),
        settings=settings(https_proxy=proxy.url),
        upstream_url=upstream,
    )
    assert "identified" in await chat(gateway, "identified", model="mtls")
    assert await failed_chat(gateway, "anonymous") == (
        "upstream openai (default/anonymous) refused the TLS session (it closed the new connection before "
        "answering); if it asks for a client certificate, give the credential one in "
        "egress.clientCertificateSecretRef"
    )
    assert len(simulator_log(mtls_simulator)) == 1
    assert {target for _, target in proxy.requests()} == {f"127.0.0.1:{mtls_simulator.port}"}


async def test_token_counts_go_out_the_credentials_way_too(
    https_simulator: test_utils.TestServer, ca_bundle: Path, tinyproxies: ProxyFactory, gateway_factory: GatewayFactory
) -> None:
    """``/v1/messages/count_tokens`` asks Anthropic through the same proxy (the Anthropic SDK)."""
    proxy = tinyproxies(connect_ports=[https_simulator.port])
    gateway = await gateway_factory(
        settings=settings(https_proxy=proxy.url, ca_bundle=ca_bundle), upstream_url=base_url(https_simulator)
    )
    async with anthropic.AsyncAnthropic(base_url=str(gateway.make_url("")), api_key=DEMO_KEY, max_retries=0) as claude:
        counted = await claude.messages.count_tokens(
            model="claude-sonnet", messages=[{"role": "user", "content": "count me through the proxy"}]
        )
    assert counted.input_tokens > 0
    assert simulator_log(https_simulator).last().path == "/v1/messages/count_tokens"
    assert proxy.requests() == [("CONNECT", f"127.0.0.1:{https_simulator.port}")]
