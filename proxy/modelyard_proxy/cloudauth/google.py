"""OAuth access tokens for Vertex AI calls, from a service-account key or the pod's own Google identity.

A credential with ``secretRef`` holds a service-account key: google-auth signs a JWT with it and trades it at
the key's ``token_uri``. Without one, application default credentials apply: on GKE with Workload Identity
that is the metadata server answering for the Kubernetes ServiceAccount's Google service account.

A request pays a clock read, a comparison and a header: the token is cached with its expiry. google-auth's
refreshes are blocking HTTP, so they run in a thread, one at a time per credential (concurrent requests share
it), and start in the background :data:`ADVISORY_SECONDS` before expiry. A request waits only when no token
it may still send is cached, and then at most :data:`WAIT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import math
import time
from typing import cast

import google.auth
import google.auth.credentials
import google.auth.exceptions
import orjson
from google.oauth2 import service_account

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.cloudauth.authorizer import CallAuthorizer, OutgoingCall
from modelyard_proxy.cloudauth.google_transport import Transport, transport_for
from modelyard_routing import Credential

logger = logging.getLogger(__name__)

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
#: A refresh starts in the background once the token has this little left (or half its life, if shorter).
ADVISORY_SECONDS = 300.0
#: A token with this little left (or a tenth of its life) is not sent: it could expire on the way.
MANDATORY_SECONDS = 30.0
#: The longest a request waits for a token when none is cached.
WAIT_SECONDS = 10.0
#: After a failed refresh, requests get its error at once for this long instead of trying again each.
FAILURE_HOLD_SECONDS = 5.0


class TokenFailure(Exception):
    """Why no token could be had, in words safe for the client and the log (never the key)."""

    def __init__(self, message: str, *, transient: bool = False, permanent: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        #: Nothing this credential holds can change it (a malformed key): not tried again.
        self.permanent = permanent


class GoogleTokens(CallAuthorizer):
    """Adds ``Authorization: Bearer <access token>`` to each call of one Vertex AI credential."""

    def __init__(self, credential: Credential) -> None:
        self._credential = credential
        self._source: google.auth.credentials.Credentials | None = None
        self._transport: Transport | None = None
        self._header = ""
        #: Monotonic times: a background refresh starts at the first, the token is no longer sent from the second.
        self._refresh_at = 0.0
        self._usable_until = 0.0
        self._refreshing: asyncio.Task[None] | None = None
        self._failure: GatewayError | None = None
        self._failed_until = 0.0
        self._logged: set[str] = set()

    async def authorize(self, call: OutgoingCall) -> None:
        if time.monotonic() >= self._refresh_at:
            await self._renew()
        call.headers["authorization"] = self._header

    def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
        if self._transport is not None:
            self._transport.close()

    async def _renew(self) -> None:
        """Refresh in the background while the cached token may still be sent, else wait for a refresh."""
        now = time.monotonic()
        if now < self._usable_until:
            if now >= self._failed_until:
                _ = self._start()  # the request goes on with the cached token
            return
        if self._failure is not None and now < self._failed_until:
            raise self._failure
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                await asyncio.shield(self._start())
        except TimeoutError:
            raise self._error(
                TokenFailure(f"Google issued no access token within {WAIT_SECONDS:g}s", transient=True)
            ) from None
        except asyncio.CancelledError:
            if (current := asyncio.current_task()) is not None and current.cancelling():
                raise  # this request is being cancelled
            # The refresh was: the credential was replaced (a new table) or the gateway is stopping.
            raise self._error(
                TokenFailure("the credential was replaced while its token was fetched", transient=True)
            ) from None
        if time.monotonic() >= self._usable_until:
            raise self._failure or self._error(TokenFailure("Google issued no access token", transient=True))

    def _start(self) -> asyncio.Task[None]:
        """The refresh under way, or a new one: never two at once."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
        return self._refreshing

    async def _refresh(self) -> None:
        try:
            token, lifetime = await asyncio.to_thread(self._fetch)
        except Exception as exc:  # whatever broke, requests get a clear error, not a traceback
            failure = exc if isinstance(exc, TokenFailure) else _unexpected(exc)
            self._failure = self._error(failure)
            self._failed_until = math.inf if failure.permanent else time.monotonic() + FAILURE_HOLD_SECONDS
            return
        now = time.monotonic()
        self._header = f"Bearer {token}"
        self._refresh_at = now + lifetime - min(ADVISORY_SECONDS, lifetime / 2)
        self._usable_until = now + lifetime - min(MANDATORY_SECONDS, lifetime / 10)
        self._failure = None
        self._failed_until = 0.0

    def _fetch(self) -> tuple[str, float]:
        """A new token and the seconds it lives (blocking: runs in a thread)."""
        if self._source is None:
            self._source = self._load()
        if self._transport is None:  # a key's token endpoint is on the internet; the metadata server is not
            keyed = self._credential.service_account is not None
            self._transport = transport_for(self._credential.egress if keyed else None)
        try:
            self._source.refresh(self._transport)  # type: ignore[no-untyped-call]
        except google.auth.exceptions.GoogleAuthError as exc:
            raise _refused(exc) from None
        token = self._source.token
        if not isinstance(token, str) or not token:
            raise TokenFailure("Google answered without an access token", transient=True)
        expiry = self._source.expiry  # naive UTC, as google-auth keeps it
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        lifetime = (expiry - now).total_seconds() if expiry is not None else 3600.0
        return token, max(lifetime, 0.0)

    def _load(self) -> google.auth.credentials.Credentials:
        secret = self._credential.service_account
        if secret is not None:
            return service_account_credentials(secret.get_secret_value())
        try:
            found, _project = google.auth.default(scopes=SCOPES)
        except google.auth.exceptions.DefaultCredentialsError:
            raise TokenFailure(
                "no Google credentials: set spec.secretRef to a Secret holding a service-account key, or run the "
                "gateway with GKE Workload Identity (annotate its ServiceAccount with iam.gke.io/gcp-service-account)"
            ) from None
        return found

    def _error(self, failure: TokenFailure) -> GatewayError:
        """The client's error for ``failure``, logged the first time it is seen for this credential."""
        credential = self._credential.id
        reason = str(failure)
        if reason not in self._logged:
            self._logged.add(reason)
            logger.warning("vertex-ai credential %s has no access token: %s", credential, reason)
        where = f"upstream vertex-ai ({credential})"
        if failure.transient:
            return GatewayError(
                502, f"{where} is unreachable for a token: {reason}", type="upstream_error",
                code="upstream_unreachable", retryable=True,
            )  # fmt: skip
        return GatewayError(
            502, f"{where} has no usable Google credential: {reason}", type="upstream_error",
            code="upstream_auth_failed",
        )  # fmt: skip


def service_account_credentials(key: str) -> google.auth.credentials.Credentials:
    """google-auth's credentials for a service-account key file; a key it cannot load is named, never shown."""
    try:
        made = service_account.Credentials.from_service_account_info(orjson.loads(key), scopes=SCOPES)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, KeyError, AttributeError):  # not JSON, a field missing, no PEM private key
        raise TokenFailure(
            "its service-account key cannot be loaded: the Secret must hold a service account's JSON key file, "
            "its private_key a PEM private key",
            permanent=True,
        ) from None
    return cast("google.auth.credentials.Credentials", made)


def _refused(exc: google.auth.exceptions.GoogleAuthError) -> TokenFailure:
    """A failed refresh: transient when google-auth says a retry may succeed or the exchange itself failed."""
    transient = isinstance(exc, google.auth.exceptions.TransportError) or bool(getattr(exc, "retryable", False))
    reason = str(exc.args[0]) if exc.args else type(exc).__name__
    return TokenFailure(f"the token request failed: {reason[:300]}", transient=transient)


def _unexpected(exc: Exception) -> TokenFailure:
    """A failure google-auth does not classify (a bug, an odd answer): named by type only, retried later."""
    return TokenFailure(f"getting a token failed with {type(exc).__name__}", transient=True)
