"""A credential's own egress settings (``spec.egress``) as the upstream client's, built once per distinct setting.

A credential without any goes out the gateway's way (``None``: one attribute check on the request path). One
with a proxy, ``direct``, a CA bundle or a client certificate gets settings derived from the gateway's the first
time it is called (a TLS context, its own pooled connections), kept while a credential with that setting is in
the table: a rotated Secret changes the setting, and so gets a new TLS context and new connections.
"""

from __future__ import annotations

import logging

from modelyard_proxy.upstream import EgressSettings, InvalidEgress, UpstreamClient
from modelyard_routing.table import Credential

log = logging.getLogger(__name__)


def egress_for(client: UpstreamClient, credential: Credential) -> EgressSettings | None:
    """The settings a call with ``credential`` goes out with (``InvalidEgress`` if they cannot be used)."""
    egress = credential.egress
    if egress is None:
        return None
    return client.derived_egress.get(credential, egress, _derive)


def _derive(gateway: EgressSettings, credential: Credential) -> EgressSettings:
    egress = credential.egress
    assert egress is not None
    try:
        return gateway.derive(
            proxy_url=egress.proxy_url.get_secret_value() if egress.proxy_url is not None else None,
            direct=egress.direct,
            ca_pem=egress.ca_bundle,
            client_certificate=egress.client_certificate,
            client_key=egress.client_key.get_secret_value() if egress.client_key is not None else None,
        )
    except InvalidEgress as exc:
        log.warning("credential %s: its egress settings cannot be used: %s", credential.id, exc)
        raise
