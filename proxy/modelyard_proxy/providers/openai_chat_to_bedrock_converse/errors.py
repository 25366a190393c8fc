"""Bedrock's failures as the gateway's errors, whether answered over HTTP or inside an event stream.

Bedrock names the failure by exception type: in the ``x-amzn-ErrorType`` header (``ThrottlingException:http://…``),
in the body's ``__type`` (``com.amazon.coral…#ThrottlingException``), or, in a stream, in the frame's
``:exception-type`` (lowerCamel). The type decides the status ``classify`` sees, because Bedrock's own status
does not always say what happened (a model that is not ready answers 429, a quota 400). Authentication
failures are reported by type only: AWS's text for a bad signature quotes the canonical request, which can
hold the session token, and its access-denied text names the gateway's account and role.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import orjson

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.failures.classify import classify
from modelyard_proxy.providers.base import UpstreamStreamError
from modelyard_routing import Credential

PROVIDER = "bedrock"
#: Messages Bedrock's models give for a prompt that does not fit (classify knows the others).
CONTEXT_LENGTH = re.compile(
    r"input is too long|too many input tokens|max_tokens.*exceed|exceeds? (?:the )?(?:model'?s? )?(?:maximum )?context"
    r"|prompt is too long|input length .* exceeds",
    re.IGNORECASE,
)
#: AWS access key ids (long-term ``AKIA``, temporary ``ASIA``), never echoed whatever the text around them.
ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b")
AUTH_TYPES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class Meaning:
    """The status an exception type is classified as, and the code that tells ``classify`` more."""

    status: int
    code: str | None = None


MEANINGS: dict[str, Meaning] = {
    "ThrottlingException": Meaning(429),
    "ServiceQuotaExceededException": Meaning(429, "insufficient_quota"),
    "ModelNotReadyException": Meaning(503),
    "ServiceUnavailableException": Meaning(503),
    "ModelTimeoutException": Meaning(408),
    "InternalServerException": Meaning(500),
    "ModelErrorException": Meaning(502),
    "ModelStreamErrorException": Meaning(502),
    "ResourceNotFoundException": Meaning(404),
    "ValidationException": Meaning(400),
    "SerializationException": Meaning(400),
    **dict.fromkeys(AUTH_TYPES, Meaning(403)),
}


def exception_type(headers: Mapping[str, str], body: Any) -> str | None:
    """The AWS exception type from the header, else the body's ``__type``/``code``; UpperCamel, no namespace."""
    raw = headers.get("x-amzn-errortype") or headers.get("x-amzn-ErrorType")
    if not raw and isinstance(body, dict):
        raw = body.get("__type") or body.get("code")
    if not isinstance(raw, str) or not raw:
        return None
    name = raw.partition(":")[0].rpartition("#")[2].strip()
    return name[:1].upper() + name[1:] if name else None


def message_of(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    message = body.get("message") or body.get("Message")
    return message if isinstance(message, str) else None


def http_error(status: int, headers: Mapping[str, str], payload: bytes, credential: Credential) -> GatewayError:
    """The gateway's error for a non-2xx Bedrock answer (JSON from Bedrock, or text from a proxy in between)."""
    try:
        body: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        body = None
    kind = exception_type(headers, body)
    message = message_of(body)
    if message is None and body is None and kind is None:
        message = payload.decode("utf-8", "replace")
    return bedrock_error(status, kind, message or "", credential, headers)


def bedrock_error(
    status: int, kind: str | None, message: str, credential: Credential, headers: Mapping[str, str] | None = None
) -> GatewayError:
    """Classify one Bedrock failure by its exception type (``kind``), falling back on the status it came with."""
    meaning = MEANINGS.get(kind or "", Meaning(status))
    code = meaning.code
    if kind in AUTH_TYPES:
        message = f"{kind}: AWS refused the gateway's credentials or signature"
    elif meaning.status == 400 and CONTEXT_LENGTH.search(message):
        code = "context_length_exceeded"
    elif kind:
        message = f"{kind}: {message}" if message else kind
    return classify(
        meaning.status,
        ACCESS_KEY_ID.sub("[redacted]", message),
        credential,
        provider=PROVIDER,
        upstream_type=kind,
        upstream_code=code,
        headers=headers,
    )


def stream_exception(kind: str, payload: bytes, credential: Credential) -> UpstreamStreamError:
    """An exception frame (``:exception-type`` such as ``throttlingException``) as an in-band failure."""
    try:
        body: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        body = None
    name = kind[:1].upper() + kind[1:]
    error = bedrock_error(MEANINGS.get(name, Meaning(500)).status, name, message_of(body) or "", credential)
    return UpstreamStreamError(error.status, error.message, type=error.type, code=error.code, param=error.param)
