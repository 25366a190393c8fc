"""Google's OAuth token endpoint and the GCE metadata server, and the access tokens they issued.

``POST /token`` trades a service-account JWT (RFC 7523's ``jwt-bearer`` grant, as google-auth sends it) for an
access token when its signature verifies against the public certificate registered for its issuer
(:meth:`GoogleAuthority.trust`). The metadata server (``/computeMetadata/v1/...`` and the ``/`` ping google-auth's
application-default detection sends) issues tokens to anyone asking with ``Metadata-Flavor: Google``, as on
GKE with Workload Identity; point google-auth at it with ``GCE_METADATA_HOST`` and ``GCE_METADATA_IP``.
Vertex AI routes accept only unexpired tokens issued here.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
from aiohttp import web
from google.auth import jwt

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: The audience google-auth's assertions name, wherever the key's ``token_uri`` points.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # noqa: S105  # a URL, not a secret
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
FLAVOR = "Metadata-Flavor"
_MISSING_FLAVOR = "Missing required header: Metadata-Flavor: Google\n"


class GoogleAuthority:
    """The service accounts the token endpoint knows, and every token issued, with its expiry."""

    def __init__(self, *, token_lifetime: float = 3600.0, project_id: str = "modelyard-simulator") -> None:
        #: Seconds each new token lives (``expires_in``).
        self.token_lifetime = token_lifetime
        self.project_id = project_id
        #: ``client_email`` -> its public certificate (or public key), PEM.
        self.accounts: dict[str, str] = {}
        #: The service account of each token issued, oldest first.
        self.issued: list[str] = []
        self._expiries: dict[str, float] = {}

    @property
    def metadata_account(self) -> str:
        """The Google service account the metadata server answers for."""
        return f"gateway@{self.project_id}.iam.gserviceaccount.com"

    def trust(self, client_email: str, certificate: str) -> None:
        """Accept JWTs from ``client_email`` signed by the key of ``certificate``."""
        self.accounts[client_email] = certificate

    def issue(self, account: str) -> dict[str, object]:
        """A new access token for ``account``, as the token endpoint and the metadata server answer it."""
        token = f"ya29.sim-{secrets.token_urlsafe(32)}"
        self._expiries[token] = time.monotonic() + self.token_lifetime
        self.issued.append(account)
        lifetime = self.token_lifetime
        expires_in = int(lifetime) if lifetime == int(lifetime) else lifetime
        return {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}

    def revoke_all(self) -> None:
        """Forget every token issued, as Google does a deleted key's or a disabled account's."""
        self._expiries.clear()

    def refusal(self, token: str | None) -> str | None:
        """Why ``token`` may not call Vertex AI, or None when it was issued here and has not expired."""
        if not token:
            return "Request is missing required authentication credential. Expected OAuth 2 access token."
        expiry = self._expiries.get(token)
        if expiry is None:
            return "Request had invalid authentication credentials. Expected OAuth 2 access token."
        if time.monotonic() >= expiry:
            return "Request had invalid authentication credentials: the access token has expired."
        return None


GOOGLE_AUTH = web.AppKey("modelyard_simulator.google_auth", GoogleAuthority)


def _oauth_error(error: str, description: str) -> web.Response:
    body = orjson.dumps({"error": error, "error_description": description})
    return web.Response(status=400, body=body, content_type="application/json")


async def token(request: web.Request) -> web.Response:
    """``POST /token``: an access token for a verified service-account assertion."""
    authority = request.app[GOOGLE_AUTH]
    form = await request.post()
    if form.get("grant_type") != JWT_BEARER:
        return _oauth_error("unsupported_grant_type", "Invalid grant_type.")
    assertion = form.get("assertion")
    if not isinstance(assertion, str):
        return _oauth_error("invalid_request", "Missing required parameter: assertion")
    try:
        issuer = _claims(assertion, None).get("iss")
    except ValueError:
        return _oauth_error("invalid_grant", "Invalid JWT: the assertion cannot be read.")
    certificate = authority.accounts.get(issuer) if isinstance(issuer, str) else None
    if certificate is None:
        return _oauth_error("invalid_grant", "Invalid grant: account not found")
    try:
        claims = _claims(assertion, certificate, audience=[GOOGLE_TOKEN_AUDIENCE, str(request.url)])
    except ValueError:
        return _oauth_error("invalid_grant", "Invalid JWT Signature.")
    if CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
        return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    return web.Response(body=orjson.dumps(authority.issue(str(issuer))), content_type="application/json")


def _claims(assertion: str, certificate: str | None, audience: list[str] | None = None) -> dict[str, Any]:
    """The JWT's claims, its signature and audience verified unless ``certificate`` is None; ValueError if not."""
    verify = certificate is not None
    claims = jwt.decode(assertion, certs=certificate, verify=verify, audience=audience)  # type: ignore[no-untyped-call]
    if not isinstance(claims, dict):
        raise ValueError("claims are not an object")  # google-auth's own failures are ValueErrors
    return claims


def _metadata(text: str | None = None, payload: object = None) -> web.Response:
    body = orjson.dumps(payload) if text is None else text.encode()
    content_type = "text/plain" if text is not None else "application/json"
    return web.Response(body=body, content_type=content_type, headers={FLAVOR: "Google"})


def _flavored(request: web.Request) -> bool:
    return request.headers.get(FLAVOR) == "Google"


async def metadata_ping(request: web.Request) -> web.Response:
    """``GET /``: what google-auth probes to decide it runs on Google Cloud."""
    if not _flavored(request):
        return web.Response(status=403, text=_MISSING_FLAVOR)
    return _metadata("computeMetadata/\n")


async def metadata(request: web.Request) -> web.Response:
    """``GET /computeMetadata/v1/{path}``: the project, the default service account and its tokens."""
    if not _flavored(request):
        return web.Response(status=403, text=_MISSING_FLAVOR)
    authority = request.app[GOOGLE_AUTH]
    path = request.match_info["path"].rstrip("/")
    account = authority.metadata_account
    for alias in ("default", account):
        prefix = f"instance/service-accounts/{alias}"
        if path == prefix:
            return _metadata(payload={"aliases": ["default"], "email": account, "scopes": [CLOUD_PLATFORM]})
        if path == f"{prefix}/email":
            return _metadata(account)
        if path == f"{prefix}/token":
            return _metadata(payload=authority.issue(account))
    if path == "project/project-id":
        return _metadata(authority.project_id)
    if path == "universe/universe-domain":
        return _metadata("googleapis.com")
    return web.Response(status=404, text="Not Found\n", headers={FLAVOR: "Google"})
