"""Proxy URLs and ``NO_PROXY`` matching, as the gateway reads them once at startup."""

from __future__ import annotations

import base64
import gc
import re

import pytest

from modelyard_proxy.upstream import EgressCache, EgressSettings, InvalidEgress
from modelyard_proxy.upstream.proxies import ForwardProxy, NoProxy, ProxyChoice


@pytest.mark.parametrize(
    ("entries", "host", "port", "direct"),
    [
        ("", "api.openai.com", 443, False),
        ("*", "api.openai.com", 443, True),
        ("openai.com", "openai.com", 443, True),
        ("openai.com", "api.openai.com", 443, True),
        ("openai.com", "notopenai.com", 443, False),
        (".openai.com", "api.openai.com", 443, True),
        (".openai.com", "openai.com", 443, True),
        ("*.openai.com", "api.openai.com", 443, True),
        ("OpenAI.COM", "API.openai.com.", 443, True),
        ("a.example, b.example", "x.b.example", 80, True),
        ("a.example b.example", "b.example", 80, True),
        (" a.example ,, ", "a.example", 80, True),
        ("internal:8443", "vllm.internal", 8443, True),
        ("internal:8443", "vllm.internal", 443, False),
        ("10.1.2.3", "10.1.2.3", 443, True),
        ("10.1.2.3", "10.1.2.4", 443, False),
        ("10.0.0.0/8", "10.200.0.7", 443, True),
        ("10.0.0.0/8", "11.0.0.1", 443, False),
        ("10.0.0.0/8", "ten.example", 443, False),  # names are not resolved for CIDR entries
        ("192.168.0.0/16:8000", "192.168.3.4", 8000, True),
        ("192.168.0.0/16:8000", "192.168.3.4", 8001, False),
        ("::1", "::1", 443, True),
        ("[::1]:8443", "::1", 8443, True),
        ("[::1]:8443", "::1", 443, False),
        ("fd00::/8", "fd12::5", 443, True),
        ("localhost", "127.0.0.1", 80, False),  # an address is not a name
    ],
)
def test_no_proxy_matching(entries: str, host: str, port: int, direct: bool) -> None:
    assert NoProxy(entries).matches(host, port) is direct


def test_proxy_url_credentials_are_percent_decoded_into_basic() -> None:
    proxy = ForwardProxy.parse("http://us%40er:p%3Ass%2Fw%25rd@Proxy.Corp:3128")
    assert (proxy.host, proxy.port, str(proxy)) == ("proxy.corp", 3128, "http://proxy.corp:3128")
    assert proxy.authorization == "Basic " + base64.b64encode(b"us@er:p:ss/w%rd").decode()
    assert "p%3Ass" not in repr(proxy)
    assert "p:ss" not in repr(proxy)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("proxy.corp:3128", "http://proxy.corp:3128"),
        ("http://proxy.corp", "http://proxy.corp:80"),
        ("http://[fd00::1]:3128", "http://[fd00::1]:3128"),
        ("HTTPS://proxy.corp", "https://proxy.corp:443"),
    ],
)
def test_proxy_url_forms(url: str, shown: str) -> None:
    proxy = ForwardProxy.parse(url)
    assert str(proxy) == shown
    assert proxy.authorization is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("socks5://u:secret@proxy.corp:1080", "only http:// and https:// forward proxies are supported, not socks5://"),
        ("http://u:secret@proxy.corp:99999", "the proxy URL's port is not a number from 0 to 65535 (host proxy.corp)"),
        ("http://u:secret@:3128", "the proxy URL names no host"),
    ],
)
def test_unusable_proxy_urls_are_refused_without_their_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        ForwardProxy.parse(url)
    assert "secret" not in str(refused.value)


def test_choice_per_scheme_and_no_proxy() -> None:
    choice = ProxyChoice.from_values(https_proxy="http://tls-proxy:3128", http_proxy="http://plain-proxy:3128")
    assert str(choice.proxy_for("https", "api.openai.com", 443)) == "http://tls-proxy:3128"
    assert str(choice.proxy_for("http", "vllm", 8000)) == "http://plain-proxy:3128"
    only_https = ProxyChoice.from_values(https_proxy="http://tls-proxy:3128", no_proxy="vllm")
    assert only_https.proxy_for("http", "api.openai.com", 80) is None
    assert only_https.proxy_for("https", "vllm", 443) is None


class Credential:
    """Stands in for a table's credential: an object per table, its egress setting a value."""

    def __init__(self, egress: str) -> None:
        self.egress = egress


def test_credential_settings_are_built_once_per_setting_and_forgotten_with_their_credentials() -> None:
    """A new table's credential with an unchanged setting keeps its settings (and so its TLS context and pooled
    connections); a rotated Secret (a changed setting) gets new ones; nothing outlives its credentials."""
    cache = EgressCache(EgressSettings())
    built: list[Credential] = []

    def build(gateway: EgressSettings, credential: Credential) -> EgressSettings:
        built.append(credential)
        return gateway.derive(direct=True)

    first = Credential("proxy-a")
    settings = cache.get(first, first.egress, build)
    assert cache.get(first, first.egress, build) is settings
    next_table = Credential("proxy-a")
    assert cache.get(next_table, next_table.egress, build) is settings
    rotated = Credential("proxy-b")
    assert cache.get(rotated, rotated.egress, build) is not settings
    assert built == [first, rotated]
    del first, next_table, built[:], settings
    gc.collect()
    assert len(cache) == 1
    again = Credential("proxy-a")
    cache.get(again, again.egress, build)
    assert built == [again]  # the setting's settings went with the last credential that had it


def test_settings_that_cannot_be_built_are_remembered_as_such() -> None:
    cache = EgressCache(EgressSettings())
    attempts = []

    def build(gateway: EgressSettings, credential: Credential) -> EgressSettings:
        attempts.append(credential)
        return gateway.derive(ca_pem=credential.egress)

    broken = Credential("garbage")
    for _ in range(3):
        with pytest.raises(InvalidEgress, match="the CA bundle holds no usable PEM certificate"):
            cache.get(broken, broken.egress, build)
    assert attempts == [broken]
