"""The gateway-wide egress settings as the proxy reads them from its environment, once, at startup."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard_proxy.api.app import create_app
from modelyard_proxy.base.settings import ProxySettings
from modelyard_proxy.table.store import TableStore

VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "MODELYARD_CA_BUNDLE")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_proxy_variables_are_read_lowercase_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper:3128")
    monkeypatch.setenv("https_proxy", "http://lower:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain:3128")
    monkeypatch.setenv("NO_PROXY", ".svc,10.0.0.0/8")
    monkeypatch.setenv("MODELYARD_CA_BUNDLE", "/etc/modelyard/egress-ca/ca.crt")
    settings = ProxySettings()
    assert (settings.https_proxy, settings.http_proxy, settings.no_proxy) == (
        "http://lower:3128",
        "http://plain:3128",
        ".svc,10.0.0.0/8",
    )
    assert settings.ca_bundle == Path("/etc/modelyard/egress-ca/ca.crt")


def test_proxy_urls_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://gateway:hunter2@proxy.corp:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://gateway:hunter2@proxy.corp:3128")
    assert "hunter2" not in repr(ProxySettings())


def test_an_unusable_proxy_stops_the_start_naming_the_variable_not_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "socks5://gateway:hunter2@proxy.corp:1080")
    with pytest.raises(ValueError, match=r"^HTTP_PROXY is not a usable proxy URL: only http:// and https://") as bad:
        create_app(ProxySettings(), TableStore())
    assert "hunter2" not in str(bad.value)


def test_an_unreadable_ca_bundle_stops_the_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    monkeypatch.setenv("MODELYARD_CA_BUNDLE", str(empty))
    with pytest.raises(ValueError, match=r"^MODELYARD_CA_BUNDLE cannot be used: the CA bundle .*empty\.pem holds no"):
        create_app(ProxySettings(), TableStore())
