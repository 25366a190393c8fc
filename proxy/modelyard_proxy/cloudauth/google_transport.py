"""The HTTP google-auth fetches tokens with: bounded in time, and leaving the cluster as the credential's calls do.

A service-account key's token endpoint (``oauth2.googleapis.com``) is on the internet, so a credential's own
egress applies to it as to its Vertex AI calls: its proxy (or none, with ``direct``) and its extra CA
certificates, trusted beside the system's. The metadata server of application default credentials is
link-local: it is always reached directly, whatever the credential says.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import certifi
import google.auth.transport
import google.auth.transport.requests
import requests

from modelyard_routing.table import Egress

#: Each HTTP exchange of a refresh (token endpoint, metadata server) gives up after this.
HTTP_TIMEOUT_SECONDS = 5.0


class Transport(google.auth.transport.requests.Request):
    """google-auth's requests transport with every exchange bounded (its default waits two minutes)."""

    def __init__(self, session: requests.Session | None = None, ca_file: Path | None = None) -> None:
        super().__init__(session)
        self._ca_file = ca_file

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> google.auth.transport.Response:
        bounded = min(timeout or HTTP_TIMEOUT_SECONDS, HTTP_TIMEOUT_SECONDS)
        response: google.auth.transport.Response = super().__call__(  # type: ignore[no-untyped-call]
            url, method=method, body=body, headers=headers, timeout=bounded, **kwargs
        )
        return response

    def close(self) -> None:
        """Release the session's connections and the CA file written for it."""
        self.session.close()
        if self._ca_file is not None:
            self._ca_file.unlink(missing_ok=True)


def transport_for(egress: Egress | None) -> Transport:
    """A transport for a service-account key's token endpoint, through the credential's egress."""
    if egress is None:
        return Transport()
    session = requests.Session()
    if egress.direct:
        session.trust_env = False  # no HTTPS_PROXY from the environment
    if egress.proxy_url is not None:
        url = egress.proxy_url.get_secret_value()
        session.proxies = {"http": url, "https": url}
    ca_file = _ca_file(egress.ca_bundle) if egress.ca_bundle else None
    if ca_file is not None:
        session.verify = str(ca_file)
    return Transport(session, ca_file)


def _ca_file(bundle: str) -> Path:
    """The system's CA certificates and ``bundle`` in one file, as requests takes them (public data)."""
    handle, name = tempfile.mkstemp(prefix="modelyard-ca-", suffix=".pem")
    with os.fdopen(handle, "w", encoding="ascii") as out:
        out.write(Path(certifi.where()).read_text(encoding="ascii"))
        out.write("\n" + bundle)
    return Path(name)
