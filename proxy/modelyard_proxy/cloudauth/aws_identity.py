"""Whose AWS keys sign a Bedrock call: the credential's static keys, or the pod's own identity.

The pod's own identity (IRSA, EKS Pod Identity, environment, instance role) comes through botocore's
standard credential chain, fetched off the event loop and refreshed ahead of expiry.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import logging
import time

import botocore.session
from botocore.config import Config
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials

from modelyard_proxy.base.errors import GatewayError
from modelyard_routing import Credential


class AwsIdentity(abc.ABC):
    """The AWS keys to sign with now."""

    @abc.abstractmethod
    async def current(self) -> ReadOnlyCredentials:
        """Keys valid for at least the next request."""


class StaticIdentity(AwsIdentity):
    """Keys from the credential's Secret: they change only with a new table (a rotated Secret)."""

    def __init__(self, access_key_id: str, secret_access_key: str, session_token: str | None) -> None:
        self._keys = ReadOnlyCredentials(access_key_id, secret_access_key, session_token)

    async def current(self) -> ReadOnlyCredentials:
        return self._keys


#: How long a request waits for keys when none are cached. The chain's own retries may take longer: the request
#: gets a clear error instead, and the fetch goes on for the requests after it.
CHAIN_WAIT_SECONDS = 5.0
#: Keys this close to their expiry are not used for a new request: a signed request must still verify on arrival.
USABLE_MARGIN_SECONDS = 30
#: After a fetch that failed, or that left the keys due (botocore keeps the old keys when a refresh fails early,
#: and keys living less than its advisory window stay due), no new fetch starts for this long.
FETCH_PAUSE_SECONDS = 5.0
#: Bounds on botocore's own calls to STS, so that a hung endpoint frees the fetching thread.
_STS_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2})
_REASON_CHARS = 300

log = logging.getLogger(__name__)


class AwsIdentityUnavailable(GatewayError):
    """The pod's own AWS identity gave no usable keys: none are configured, they were refused, or not in time."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            503,
            f"no AWS credentials for Bedrock: {reason}. Set aws.accessKeySecretRef on the ProviderCredential, or "
            "give the gateway's pods an IAM role (IRSA: the eks.amazonaws.com/role-arn annotation on their "
            "ServiceAccount; or an EKS Pod Identity association)",
            type="upstream_error",
            code="upstream_auth_unavailable",
            retryable=True,
        )


class ChainIdentity(AwsIdentity):
    """The pod's own AWS identity, found by botocore's standard credential chain (environment keys, IRSA web
    identity, EKS Pod Identity, shared config, instance metadata); one per process, shared by every credential
    without keys (the region is each credential's, never the environment's).

    botocore fetches and refreshes with blocking HTTP, so that runs in a thread, one fetch at a time: every request
    that needs keys waits on the same fetch, and never longer than ``wait`` seconds. Cached keys are served until
    they are close to expiry. Once they enter botocore's advisory window (its public ``refresh_needed()``, 15
    minutes before expiry) a refresh starts in the background, and requests keep using the cached keys meanwhile.
    """

    def __init__(self, *, wait: float = CHAIN_WAIT_SECONDS, pause: float = FETCH_PAUSE_SECONDS) -> None:
        self._wait = wait
        self._pause = pause
        self._session: botocore.session.Session | None = None
        self._credentials: Credentials | None = None
        self._frozen: ReadOnlyCredentials | None = None
        self._flight: asyncio.Task[str | None] | None = None
        #: Why the last fetch failed (None after a success), and when the next fetch may start.
        self._failure: str | None = None
        self._next_fetch = 0.0
        #: Whether the last fetch gave keys (None before the first): logged when it changes, never per request.
        self._healthy: bool | None = None

    async def current(self) -> ReadOnlyCredentials:
        credentials, frozen = self._credentials, self._frozen
        if credentials is not None and frozen is not None and _usable(credentials):
            if _due(credentials) and self._flight is None and time.monotonic() >= self._next_fetch:
                _ = self._start()  # in the background: these keys serve meanwhile
            return frozen
        if self._flight is None and self._failure is not None and time.monotonic() < self._next_fetch:
            raise AwsIdentityUnavailable(self._failure)
        flight = self._start()
        try:
            async with asyncio.timeout(self._wait):
                failure = await asyncio.shield(flight)
        except TimeoutError:
            raise AwsIdentityUnavailable(f"fetching them took more than {self._wait:g} s") from None
        if failure is not None:
            raise AwsIdentityUnavailable(failure)
        assert self._frozen is not None  # a fetch without failure stored keys
        return self._frozen

    async def aclose(self) -> None:
        """Wait for a fetch in progress (its thread cannot be stopped), so that nothing outlives the event loop."""
        if self._flight is not None:
            await self._flight

    def _start(self) -> asyncio.Task[str | None]:
        """The fetch in progress, or a new one."""
        if self._flight is None:
            self._flight = asyncio.create_task(self._fetch(), name="aws-credential-chain")
        return self._flight

    async def _fetch(self) -> str | None:
        """One fetch in a thread; the reason it failed, or None once new keys are cached."""
        try:
            credentials, frozen = await asyncio.to_thread(self._load)
        except ChainFailed as exc:
            self._next_fetch = time.monotonic() + self._pause
            self._failure = exc.reason
            if self._healthy is not False:
                self._healthy = False
                log.warning("the pod's own AWS credentials could not be fetched: %s", exc.reason)
            return exc.reason
        finally:
            self._flight = None
        self._credentials, self._frozen = credentials, frozen
        if _due(credentials):
            self._next_fetch = time.monotonic() + self._pause
        self._failure = None
        if self._healthy is not True:
            self._healthy = True
            log.info("using the pod's own AWS identity (%s credentials)", credentials.method)
        return None

    def _load(self) -> tuple[Credentials, ReadOnlyCredentials]:
        """In a thread: the chain's credentials (found once), refreshed by botocore when due, and frozen."""
        try:
            if self._session is None:
                self._session = botocore.session.Session()
                self._session.set_default_client_config(_STS_CLIENT_CONFIG)
            credentials = self._credentials if self._credentials is not None else self._session.get_credentials()
            if credentials is None:
                raise ChainFailed(
                    "none were found (no environment keys, web identity token file, container credentials "
                    "endpoint, shared config or instance role)"
                )
            return credentials, credentials.get_frozen_credentials()
        except ChainFailed:
            raise
        except Exception as exc:  # botocore's failures share no base class: any of them means no keys now
            raise ChainFailed(f"the credential chain failed: {_reason(exc)}") from exc


class ChainFailed(Exception):
    """The chain gave no keys. ``reason`` is botocore's message, safe to show: it never holds keys or tokens."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:_REASON_CHARS]


def _due(credentials: Credentials) -> bool:
    """In botocore's advisory window: time for a background refresh (keys without expiry never are)."""
    return isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed()


def _usable(credentials: Credentials) -> bool:
    """Far enough from expiry to sign a request with."""
    return not (isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed(USABLE_MARGIN_SECONDS))


def identity_for(credential: Credential) -> AwsIdentity:
    """The identity a Bedrock credential signs with: its own keys (a new credential object, as a rotated Secret
    makes, gets a new identity), else the process's one chain identity."""
    keys = credential.aws_keys
    if keys is None:
        if credential.api_key is not None:
            msg = f"credential {credential.id} sends a Bedrock API key: it signs with no AWS keys"
            raise LookupError(msg)
        return pod_identity()
    token = keys.session_token.get_secret_value() if keys.session_token is not None else None
    return StaticIdentity(keys.access_key_id.get_secret_value(), keys.secret_access_key.get_secret_value(), token)


@functools.cache
def pod_identity() -> ChainIdentity:
    """The process's own AWS identity, made on first use and shared by every credential without keys."""
    return ChainIdentity()
