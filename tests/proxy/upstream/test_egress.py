"""The upstream client's ways out, over real sockets: a real forward proxy (tinyproxy), private CAs and mTLS.

The origins are scripted loopback servers (https with a throwaway CA from trustme); each test runs on asyncio's
loop and on uvloop. What the proxy saw is read from its own log.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from modelyard_proxy.upstream import (
    EgressSettings,
    InvalidEgress,
    ProxyRefused,
    ProxyUnreachable,
    UpstreamClient,
    UpstreamTLSRefused,
)
from modelyard_proxy.upstream.proxies import NoProxy, ProxyChoice
from tests.forwardproxy import PROXY_PASSWORD, PROXY_PASSWORD_IN_URL, PROXY_USER, ProxyFactory, relaying_to, tinyproxies
from tests.proxy.upstream.scripted import (
    ClientFactory,
    Peer,
    ServerFactory,
    Upstream,
    answering,
    request_path,
    response,
)
from tests.storeserver import free_port

__all__ = ["tinyproxies"]  # the fixture, imported for the tests below

PATIENT = 5.0


def echo_path(request: bytes) -> bytes:
    return response(request_path(request).encode())


async def fetch(client: UpstreamClient, url: str, egress: EgressSettings | None = None) -> tuple[int, bytes]:
    answer = await client.request("GET", url, {}, b"", connect_timeout=PATIENT, read_timeout=PATIENT, egress=egress)
    return answer.status, await answer.read()


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    """A private CA, trusted by nothing unless a test says so."""
    return trustme.CA()


@pytest.fixture
async def https_origin(authority: trustme.CA) -> AsyncIterator[Upstream]:
    """A keep-alive https server for 127.0.0.1, its certificate signed by the private CA, echoing the path."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    server = await Upstream(answering(echo_path), tls=context).start()
    yield server
    await server.close()


@pytest.fixture
async def mtls_origin(authority: trustme.CA) -> AsyncIterator[Upstream]:
    """An https server that accepts only clients presenting a certificate of the private CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED
    authority.configure_trust(context)
    server = await Upstream(answering(echo_path), tls=context).start()
    yield server
    await server.close()


@pytest.fixture
async def http_origin() -> AsyncIterator[Upstream]:
    server = await Upstream(answering(echo_path)).start()
    yield server
    await server.close()


def ca_pem(authority: trustme.CA) -> str:
    return authority.cert_pem.bytes().decode()


def trusting(authority: trustme.CA, proxies: ProxyChoice | None = None) -> EgressSettings:
    """Gateway settings that trust the private CA (as ``MODELYARD_CA_BUNDLE`` would)."""
    return EgressSettings(proxies or ProxyChoice(), tls_context=lambda: _trusting_context(authority))


def _trusting_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


# -- through a forward proxy --------------------------------------------------------------------------------------


async def test_https_goes_through_a_connect_tunnel_kept_alive(
    https_origin: Upstream, authority: trustme.CA, tinyproxies: ProxyFactory, clients: ClientFactory
) -> None:
    """An https origin is reached through CONNECT, TLS with the origin inside it; the tunnel is pooled."""
    proxy = tinyproxies(connect_ports=[https_origin.port])
    client = clients(egress=trusting(authority, ProxyChoice.from_values(https_proxy=proxy.url)))
    for path in ("/a", "/b"):
        assert await fetch(client, https_origin.url(path)) == (200, path.encode())
    assert proxy.requests() == [("CONNECT", f"127.0.0.1:{https_origin.port}")]
    assert https_origin.accepted == 1
    assert [request_path(raw) for raw in https_origin.requests] == ["/a", "/b"]


async def test_plain_http_is_sent_to_the_proxy_in_absolute_form(
    http_origin: Upstream, tinyproxies: ProxyFactory, clients: ClientFactory
) -> None:
    proxy = tinyproxies(connect_ports=[])
    client = clients(egress=EgressSettings(ProxyChoice.from_values(http_proxy=proxy.url)))
    assert await fetch(client, http_origin.url("/v1/x?y=1")) == (200, b"/v1/x?y=1")
    assert proxy.requests() == [("GET", f"http://127.0.0.1:{http_origin.port}/v1/x?y=1")]


async def test_an_https_proxy_is_spoken_to_over_tls(
    https_origin: Upstream,
    http_origin: Upstream,
    authority: trustme.CA,
    tinyproxies: ProxyFactory,
    clients: ClientFactory,
) -> None:
    """An ``https://`` proxy (its certificate checked like an upstream's): CONNECT and the origin's TLS inside
    the proxy's, and plain http in absolute form, both with the proxy's credentials."""
    proxy = tinyproxies(connect_ports=[https_origin.port], auth=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    front = await Upstream(relaying_to(proxy.port), tls=context).start()
    try:
        url = f"https://{PROXY_USER}:{PROXY_PASSWORD_IN_URL}@127.0.0.1:{front.port}"
        client = clients(egress=trusting(authority, ProxyChoice.from_values(https_proxy=url, http_proxy=url)))
        assert await fetch(client, https_origin.url("/tls-in-tls")) == (200, b"/tls-in-tls")
        assert await fetch(client, http_origin.url("/plain")) == (200, b"/plain")
        assert proxy.requests() == [
            ("CONNECT", f"127.0.0.1:{https_origin.port}"),
            ("GET", f"http://127.0.0.1:{http_origin.port}/plain"),
        ]
        untrusting = clients(egress=EgressSettings(ProxyChoice.from_values(https_proxy=url)))
        with pytest.raises(
            ProxyUnreachable,
            match=r"its proxy https://127\.0\.0\.1:\d+ could not be reached: its "
            r"certificate is not trusted \(.+\)$",
        ):
            await fetch(untrusting, https_origin.url())
    finally:
        await front.close()


async def test_no_proxy_hosts_go_direct(
    https_origin: Upstream, authority: trustme.CA, tinyproxies: ProxyFactory, clients: ClientFactory
) -> None:
    proxy = tinyproxies(connect_ports=[https_origin.port])
    choice = ProxyChoice.from_values(https_proxy=proxy.url, http_proxy=proxy.url, no_proxy="example.com, 127.0.0.0/8")
    client = clients(egress=trusting(authority, choice))
    assert await fetch(client, https_origin.url("/direct")) == (200, b"/direct")
    assert proxy.requests() == []
    assert https_origin.accepted == 1


async def test_proxy_credentials_are_sent_percent_decoded(
    https_origin: Upstream,
    http_origin: Upstream,
    authority: trustme.CA,
    tinyproxies: ProxyFactory,
    clients: ClientFactory,
) -> None:
    """The URL's user:password (percent-encoded there) reach the proxy as Basic credentials, for both schemes."""
    proxy = tinyproxies(connect_ports=[https_origin.port], auth=True)
    choice = ProxyChoice.from_values(https_proxy=proxy.url, http_proxy=proxy.url)
    client = clients(egress=trusting(authority, choice))
    assert await fetch(client, https_origin.url("/tls")) == (200, b"/tls")
    assert await fetch(client, http_origin.url("/plain")) == (200, b"/plain")
    assert [method for method, _ in proxy.requests()] == ["CONNECT", "GET"]
    assert not any(b"proxy-authorization" in raw.lower() for raw in http_origin.requests)


async def test_connect_refused_by_the_proxy_says_so(
    https_origin: Upstream, authority: trustme.CA, tinyproxies: ProxyFactory, clients: ClientFactory
) -> None:
    """Without the credentials it wants, the proxy answers 407: the error names the proxy and its status."""
    proxy = tinyproxies(connect_ports=[https_origin.port], auth=True)
    client = clients(egress=trusting(authority, ProxyChoice.from_values(https_proxy=proxy.address)))
    with pytest.raises(ProxyRefused) as refused:
        await fetch(client, https_origin.url())
    assert refused.value.status == 407
    assert str(refused.value) == (
        f"its proxy {proxy.address} refused the tunnel to 127.0.0.1:{https_origin.port}: "
        "407 Proxy Authentication Required"
    )
    assert https_origin.accepted == 0
    assert client.in_use == 0


async def test_plain_http_refused_by_the_proxy_says_so(
    http_origin: Upstream, tinyproxies: ProxyFactory, clients: ClientFactory
) -> None:
    """A 407 to a proxied plain http request is the proxy's answer, not the origin's: the same error as for
    CONNECT (and the connection is not kept)."""
    proxy = tinyproxies(connect_ports=[], auth=True)
    client = clients(egress=EgressSettings(ProxyChoice.from_values(http_proxy=proxy.address)))
    with pytest.raises(ProxyRefused, match=r"407 Proxy Authentication Required") as refused:
        await fetch(client, http_origin.url("/x"))
    assert refused.value.status == 407
    assert http_origin.accepted == 0
    assert client.in_use == 0
    assert client.idle_connections() == 0


async def test_connect_to_a_port_the_proxy_forbids_is_refused(
    https_origin: Upstream, authority: trustme.CA, tinyproxies: ProxyFactory, clients: ClientFactory
) -> None:
    proxy = tinyproxies(connect_ports=[https_origin.port + 1])
    client = clients(egress=trusting(authority, ProxyChoice.from_values(https_proxy=proxy.url)))
    with pytest.raises(ProxyRefused) as refused:
        await fetch(client, https_origin.url())
    assert refused.value.status == 403
    assert https_origin.accepted == 0


@pytest.mark.parametrize("scheme", ["https", "http"])
async def test_unreachable_proxy_is_named_without_its_password(
    scheme: str, clients: ClientFactory, authority: trustme.CA
) -> None:
    port = free_port()  # nothing listens there
    url = f"http://user:{PROXY_PASSWORD}@127.0.0.1:{port}"
    client = clients(egress=trusting(authority, ProxyChoice.from_values(https_proxy=url, http_proxy=url)))
    with pytest.raises(ProxyUnreachable) as unreachable:
        await fetch(client, f"{scheme}://origin.invalid/v1")
    assert str(unreachable.value) == f"its proxy http://127.0.0.1:{port} could not be reached (ConnectionRefusedError)"
    assert PROXY_PASSWORD not in repr(unreachable.value.proxy)
    assert client.in_use == 0


async def test_a_proxy_closing_instead_of_answering_connect_is_unreachable(
    serve: ServerFactory, clients: ClientFactory
) -> None:
    async def hang_up(peer: Peer) -> None:
        await peer.request()

    proxy = await serve(hang_up)
    client = clients(egress=EgressSettings(ProxyChoice.from_values(https_proxy=proxy.url())))
    with pytest.raises(ProxyUnreachable) as unreachable:
        await fetch(client, "https://api.example.com/v1")
    assert str(unreachable.value) == (
        f"its proxy http://127.0.0.1:{proxy.port} closed the connection instead of answering CONNECT "
        "api.example.com:443"
    )
    assert proxy.requests[0].startswith(b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n")
    assert client.in_use == 0


async def test_a_proxy_answering_connect_with_something_else_than_http_is_refused(
    serve: ServerFactory, clients: ClientFactory
) -> None:
    async def babble(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await peer.until_client_closes()

    proxy = await serve(babble)
    client = clients(egress=EgressSettings(ProxyChoice.from_values(https_proxy=proxy.url())))
    with pytest.raises(ProxyRefused, match=r"refused the tunnel to api\.example\.com:443: an answer that is not HTTP"):
        await fetch(client, "https://api.example.com/v1")


async def test_a_proxy_silent_after_connect_is_bounded_by_the_connect_timeout(
    serve: ServerFactory, clients: ClientFactory
) -> None:
    async def silent(peer: Peer) -> None:
        await peer.request()
        await peer.until_client_closes()

    proxy = await serve(silent)
    client = clients(egress=EgressSettings(ProxyChoice.from_values(https_proxy=proxy.url())))
    with pytest.raises(TimeoutError):
        await client.request("GET", "https://api.example.com/", {}, b"", connect_timeout=0.2, read_timeout=PATIENT)
    await proxy.wait_for(lambda: proxy.open == 0)  # the half-open tunnel was closed
    assert client.in_use == 0


async def test_two_egress_settings_never_share_a_connection(
    https_origin: Upstream, authority: trustme.CA, tinyproxies: ProxyFactory, clients: ClientFactory
) -> None:
    """One origin reached through the proxy and directly: two pools, each reused by its own settings only."""
    proxy = tinyproxies(connect_ports=[https_origin.port])
    gateway = trusting(authority, ProxyChoice.from_values(https_proxy=proxy.url))
    direct = gateway.derive(direct=True)
    client = clients(egress=gateway)
    for egress in (None, direct, None, direct):
        assert await fetch(client, https_origin.url("/p"), egress) == (200, b"/p")
    assert https_origin.accepted == 2
    assert proxy.requests() == [("CONNECT", f"127.0.0.1:{https_origin.port}")]
    assert client.idle_connections() == 2


async def test_a_credentials_own_proxy_overrides_no_proxy(
    http_origin: Upstream, tinyproxies: ProxyFactory, clients: ClientFactory
) -> None:
    """``NO_PROXY`` is the gateway's: a credential naming its own proxy goes through it anyway."""
    gateway_proxy = tinyproxies(connect_ports=[])
    own_proxy = tinyproxies(connect_ports=[])
    gateway = EgressSettings(ProxyChoice.from_values(http_proxy=gateway_proxy.url, no_proxy="*"))
    client = clients(egress=gateway)
    assert await fetch(client, http_origin.url("/gw")) == (200, b"/gw")
    assert await fetch(client, http_origin.url("/own"), gateway.derive(proxy_url=own_proxy.url)) == (200, b"/own")
    assert gateway_proxy.requests() == []
    assert own_proxy.requests() == [("GET", f"http://127.0.0.1:{http_origin.port}/own")]


# -- private CAs and client certificates --------------------------------------------------------------------------


async def test_private_ca_refused_without_its_bundle_and_accepted_with_it(
    https_origin: Upstream, authority: trustme.CA, clients: ClientFactory
) -> None:
    client = clients()
    with pytest.raises(ssl.SSLCertVerificationError):
        await fetch(client, https_origin.url())
    with_bundle = client.egress.derive(ca_pem=ca_pem(authority))
    assert await fetch(client, https_origin.url("/ok"), with_bundle) == (200, b"/ok")


async def test_private_ca_through_the_proxy_tunnel(
    https_origin: Upstream, authority: trustme.CA, tinyproxies: ProxyFactory, clients: ClientFactory
) -> None:
    """The origin's certificate is verified inside the tunnel, against the credential's bundle."""
    proxy = tinyproxies(connect_ports=[https_origin.port])
    client = clients(egress=EgressSettings(ProxyChoice.from_values(https_proxy=proxy.url)))
    with pytest.raises(ssl.SSLCertVerificationError):
        await fetch(client, https_origin.url())
    assert await fetch(client, https_origin.url("/in"), client.egress.derive(ca_pem=ca_pem(authority))) == (
        200,
        b"/in",
    )


async def test_client_certificate_is_presented_to_an_mtls_origin(
    mtls_origin: Upstream, authority: trustme.CA, clients: ClientFactory
) -> None:
    client = clients()
    anonymous = client.egress.derive(ca_pem=ca_pem(authority))
    with pytest.raises(UpstreamTLSRefused):  # an alert or a closed connection, depending on the server
        await fetch(client, mtls_origin.url(), anonymous)
    assert mtls_origin.requests == []
    issued = authority.issue_cert("gateway@example.com")
    identified = client.egress.derive(
        ca_pem=ca_pem(authority),
        client_certificate=b"".join(pem.bytes() for pem in issued.cert_chain_pems).decode(),
        client_key=issued.private_key_pem.bytes().decode(),
    )
    assert await fetch(client, mtls_origin.url("/mine"), identified) == (200, b"/mine")
    assert [request_path(raw) for raw in mtls_origin.requests] == ["/mine"]


# -- settings that cannot be used --------------------------------------------------------------------------------


def test_a_bundle_without_certificates_is_refused_clearly() -> None:
    with pytest.raises(InvalidEgress, match=r"^the CA bundle holds no usable PEM certificate"):
        EgressSettings().derive(ca_pem="not a certificate")


def test_a_certificate_without_its_key_is_refused_clearly(authority: trustme.CA) -> None:
    issued = authority.issue_cert("gateway@example.com")
    with pytest.raises(InvalidEgress, match="needs both its certificate and its key"):
        EgressSettings().derive(client_certificate=issued.cert_chain_pems[0].bytes().decode())
    other = authority.issue_cert("someone-else@example.com")
    with pytest.raises(InvalidEgress, match="cannot be loaded together") as mismatched:
        EgressSettings().derive(
            client_certificate=issued.cert_chain_pems[0].bytes().decode(),
            client_key=other.private_key_pem.bytes().decode(),
        )
    assert "PRIVATE KEY" not in str(mismatched.value)


def test_an_encrypted_client_key_is_refused_without_prompting(authority: trustme.CA) -> None:
    issued = authority.issue_cert("gateway@example.com")
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()
    with pytest.raises(InvalidEgress, match=r"^the client key is encrypted: give it unencrypted"):
        EgressSettings().derive(client_certificate=issued.cert_chain_pems[0].bytes().decode(), client_key=encrypted)


def test_a_credentials_proxy_url_that_cannot_be_used_is_named_without_its_password() -> None:
    with pytest.raises(InvalidEgress) as invalid:
        EgressSettings().derive(proxy_url="socks5://user:hunter2@proxy.internal:1080")
    assert str(invalid.value) == (
        "its proxy URL cannot be used: only http:// and https:// forward proxies are supported, not socks5://"
    )


def test_gateway_settings_name_the_variable_that_cannot_be_used() -> None:
    with pytest.raises(ValueError, match=r"^HTTPS_PROXY is not a usable proxy URL") as invalid:
        EgressSettings.gateway(https_proxy="socks5h://user:hunter2@proxy.internal:1080")
    assert "hunter2" not in str(invalid.value)
    with pytest.raises(ValueError, match=r"^MODELYARD_CA_BUNDLE cannot be used: the CA bundle /nonexistent"):
        EgressSettings.gateway(ca_bundle=Path("/nonexistent/ca.pem"))


def test_no_proxy_is_parsed_once_per_gateway() -> None:
    choice = ProxyChoice.from_values(https_proxy="proxy:3128", no_proxy=".internal")
    assert isinstance(choice.no_proxy, NoProxy)
    assert choice.proxy_for("https", "vllm.internal", 443) is None
    assert str(choice.proxy_for("https", "api.openai.com", 443)) == "http://proxy:3128"
