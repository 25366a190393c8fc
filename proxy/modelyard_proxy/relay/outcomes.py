"""What an attempt produced and how it failed: answer checks, the commit point, and upstream failure errors.

Which target, how often and when to give up is the plan's (:mod:`modelyard_proxy.relay.plan`); these are
the pure pieces each attempt and the delivery apply to an answer's bytes and exceptions.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.sse import SSEDecoder
from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.observability.accounting import Usage, usage_from
from modelyard_proxy.providers.base import CallContext, JSONObject, StreamTranslator
from modelyard_proxy.providers.ingress.protocol import IngressProtocol
from modelyard_proxy.relay.attempt_spans import Attempt
from modelyard_proxy.table.store import ResolvedTarget
from modelyard_proxy.upstream import EgressError, ProtocolError, UpstreamResponse, UpstreamTLSRefused, UpstreamTruncated

log = logging.getLogger(__name__)

PROFILE_HEADER = "x-modelyard-profile"
#: Reads a whole translated answer: its usage (OpenAI's shape) and whether it was refused; raises when it is
#: not one complete answer.
AnswerReader = Callable[[bytes], tuple[JSONObject | None, bool]]


@dataclasses.dataclass(slots=True)
class Prepared:
    """An attempt that reached the commit point: a whole body, or a stream's held frames and open upstream."""

    resolved: ResolvedTarget
    body: bytes = b""
    stream: bool = False
    finished: bool = True
    #: A stream's upstream response, open until the stream is relayed.
    upstream: UpstreamResponse | None = None
    translator: StreamTranslator | None = None
    decoder: SSEDecoder | None = None
    #: A whole answer's usage, read from the parse that checked it.
    usage: Usage | None = None
    #: The answer ended on a content filter (a refusal): another target may answer, if the route says so.
    filtered: bool = False
    #: The attempt's span facts, finished when the answer is delivered or the attempt is dropped.
    attempt: Attempt | None = None

    def close(self) -> None:
        """Release the upstream connection (a hedging loser, or a stream once relayed); finish the attempt."""
        if self.attempt is not None:
            self.attempt.finish()
            self.attempt = None
        if self.upstream is not None:
            self.upstream.close()


def request_profile(request: web.Request, body: dict[str, Any]) -> str | None:
    """The profile a request names: the ``x-modelyard-profile`` header, else ``metadata.modelyard_profile``."""
    if header := request.headers.get(PROFILE_HEADER):
        return header.strip()
    metadata = body.get("metadata")
    value = metadata.get("modelyard_profile") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) else None


#: What reading an upstream's 2xx answer or stream event raises when it is not what the dialect promises.
UNREADABLE = (MalformedAnswer, ValueError, TypeError, KeyError, AttributeError, IndexError)


def translated(
    resolved: ResolvedTarget, translate: Callable[[bytes, CallContext], bytes], payload: bytes, ctx: CallContext
) -> bytes:
    """An upstream's 2xx answer in OpenAI's form, or ``upstream_malformed`` naming the credential.

    An answer the adapter cannot read (not JSON, not the dialect's shape, a field of the wrong type) is the
    upstream's fault, never the gateway's 500, and it is the same transient failure for every provider.
    """
    try:
        return translate(payload, ctx)
    except UNREADABLE as exc:
        raise unreadable(resolved, exc) from None


def unreadable(resolved: ResolvedTarget, exc: Exception) -> GatewayError:
    """``upstream_malformed`` for an answer or stream event an adapter failed to read with ``exc``."""
    error = malformed_answer(resolved)
    log.warning("%s: %s", error.message, type(exc).__name__)  # the type only: the text may quote the answer
    return error


def whole_answer(resolved: ResolvedTarget, body: bytes, read: AnswerReader) -> Prepared:
    """``body`` if ``read`` finds it one complete answer (a cut, corrupted or foreign answer is never relayed
    as a 200), with the usage and refusal read from the same parse."""
    try:
        usage, filtered = read(body)
    except UNREADABLE:
        raise malformed_answer(resolved) from None
    return Prepared(resolved, body, usage=usage_from(usage), filtered=filtered)


def read_embeddings(body: bytes) -> tuple[JSONObject | None, bool]:
    """An embeddings answer's usage; it must be an object with its ``data`` array."""
    parsed = orjson.loads(body)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), list):
        raise MalformedAnswer("the answer has no data")
    usage = parsed.get("usage")
    return (usage if isinstance(usage, dict) else None), False


def with_trace(headers: dict[str, str], ctx: CallContext) -> dict[str, str]:
    """The adapter's headers plus the attempt's trace context."""
    return {**headers, **ctx.trace_headers} if ctx.trace_headers else headers


def malformed_answer(resolved: ResolvedTarget) -> GatewayError:
    where = f"upstream {resolved.credential.provider.value} ({resolved.credential.id})"
    return GatewayError(
        502, f"{where} sent a malformed answer", type="upstream_error", code="upstream_malformed", retryable=True
    )


#: The status nginx gave the outcome "the client closed the connection before the answer was complete".
CLIENT_CLOSED_REQUEST = 499
CLIENT_DISCONNECTED = "client_disconnected"


class ClientGone(Exception):
    """A write to the client failed: it closed its connection (not an ``OSError``, so it is never mistaken
    for the upstream's transport failing)."""


def client_disconnected() -> GatewayError:
    """The outcome of a request whose client left before its answer was delivered; nobody receives it, the
    audit line, span and metrics record it (as nginx records 499)."""
    return GatewayError(
        CLIENT_CLOSED_REQUEST,
        "the client closed the connection before the answer was complete",
        type=CLIENT_DISCONNECTED,
        code=CLIENT_DISCONNECTED,
    )


async def send(client: web.StreamResponse, data: bytes) -> None:
    """Write to the client's stream; its connection closing becomes :class:`ClientGone`."""
    try:
        await client.write(data)
    except ConnectionError as exc:
        raise ClientGone from exc


def timeout_error(resolved: ResolvedTarget, what: str) -> GatewayError:
    where = f"upstream {resolved.credential.provider.value} ({resolved.credential.id})"
    return GatewayError(504, f"{where} {what}", type="upstream_error", code="upstream_timeout", retryable=True)


async def fail_in_band(client: web.StreamResponse, error: GatewayError, protocol: IngressProtocol) -> str | None:
    """End a started stream with the protocol's error event (never its clean end), as its SDKs expect."""
    log.warning("stream failed after the commit point: %s", error.code)
    await send(client, protocol.error_frame(error))
    return error.code


def transport_error(resolved: ResolvedTarget, exc: BaseException) -> GatewayError:
    """A connection failure or timeout as a retryable 502/504 that names the upstream, not its key."""
    where = f"upstream {resolved.credential.provider.value} ({resolved.credential.id})"
    if isinstance(exc, TimeoutError):
        return timeout_error(resolved, "did not answer in time")
    if isinstance(exc, ProtocolError):
        log.warning("%s broke HTTP/1.1: %s", where, exc)
        return GatewayError(
            502, f"{where} answered malformed HTTP", type="upstream_error", code="upstream_malformed", retryable=True
        )
    if isinstance(exc, UpstreamTruncated):
        return GatewayError(
            502,
            f"{where} closed the response mid-way",
            type="upstream_error",
            code="upstream_truncated",
            retryable=True,
        )
    return GatewayError(
        502, f"{where} {_unreachable(exc)}", type="upstream_error", code="upstream_unreachable", retryable=True
    )


def _unreachable(exc: BaseException) -> str:
    """Why an upstream could not be reached, with what to set where the gateway's egress settings are the cause."""
    if isinstance(exc, EgressError):  # its message names the proxy (never its password) or the setting
        return f"could not be reached: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"could not be reached: its certificate is not trusted ({exc.verify_message}); if a private CA signed "
            "it, give the credential that CA in egress.caBundleSecretRef (behind a TLS-intercepting proxy, give "
            "the gateway the proxy's CA in MODELYARD_CA_BUNDLE)"
        )
    if isinstance(exc, UpstreamTLSRefused):
        return (
            f"refused the TLS session ({exc.reason}); if it asks for a client certificate, give the credential "
            "one in egress.clientCertificateSecretRef"
        )
    return f"could not be reached: {type(exc).__name__}"
