"""The session google-auth fetches a key's tokens with follows the credential's egress."""

from __future__ import annotations

from pathlib import Path

import certifi
from pydantic import SecretStr

from modelyard_proxy.cloudauth.google_transport import transport_for
from modelyard_routing.table import Egress

PRIVATE_CA = "-----BEGIN CERTIFICATE-----\nTUlJQnByaXZhdGUtY2E=\n-----END CERTIFICATE-----\n"


def test_without_egress_the_environment_decides() -> None:
    transport = transport_for(None)
    assert transport.session.trust_env
    assert transport.session.proxies == {}
    assert transport.session.verify is True
    transport.close()


def test_the_credentials_proxy_and_private_ca_are_used_and_the_ca_file_removed_on_close() -> None:
    egress = Egress(proxy_url=SecretStr("http://user:pw@proxy.internal:3128"), ca_bundle=PRIVATE_CA)
    transport = transport_for(egress)
    assert transport.session.proxies == {
        "http": "http://user:pw@proxy.internal:3128",
        "https": "http://user:pw@proxy.internal:3128",
    }
    assert isinstance(transport.session.verify, str)
    ca_file = Path(transport.session.verify)
    trusted = ca_file.read_text()
    assert trusted.startswith(Path(certifi.where()).read_text())  # the usual roots stay trusted
    assert trusted.endswith(PRIVATE_CA)
    transport.close()
    assert not ca_file.exists()


def test_direct_ignores_the_environments_proxy() -> None:
    transport = transport_for(Egress(direct=True))
    assert not transport.session.trust_env
    transport.close()
