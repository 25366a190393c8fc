"""Bedrock's authentication as AWS applies it: a SigV4 signature recomputed with botocore, or a Bedrock API key.

The signature is recomputed from what arrived (the raw path, the headers the client says it signed, the body,
its ``X-Amz-Date``) with the secret the keyring (:mod:`~modelyard_simulator.aws_keys`) holds for the access
key, using botocore's own ``SigV4Auth``, and compared; a gateway that canonicalises anything differently from
AWS fails here as it would against AWS. The failures are AWS's: an unknown key or session token is
``UnrecognizedClientException``, an expired session ``ExpiredTokenException``, a wrong signature or a date
more than five minutes off ``InvalidSignatureException`` (whose text quotes the canonical request, as
AWS's does, so a gateway that echoed it would leak the session token), all 403.
"""

from __future__ import annotations

import datetime
import hmac
import re

from aiohttp import web
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from modelyard_simulator.aws_keys import AWS_KEYRING
from modelyard_simulator.engine import bearer
from modelyard_simulator.errors import Failure

SERVICE = "bedrock"
#: The simulated account's Bedrock API key (``ABSK`` + base64, as Bedrock's long-term keys look).
TEST_API_KEY = "ABSKQmVkcm9ja0FQSUtleS1tb2RlbHlhcmQtdGVzdA=="
MAX_SKEW = datetime.timedelta(minutes=5)
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
INVALID_TOKEN = "The security token included in the request is invalid."  # noqa: S105  # AWS's wording


def _failure(kind: str, message: str) -> Failure:
    return Failure(403, message, code=kind)


def authenticate(request: web.Request, body: bytes, now: datetime.datetime | None = None) -> Failure | None:
    """None when the request is signed or keyed as AWS would accept it, else AWS's refusal."""
    if (token := bearer(request)) is not None:
        return None if token == TEST_API_KEY else _failure("UnrecognizedClientException", "Invalid API Key format.")
    header = request.headers.get("Authorization")
    if not header:
        return _failure("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = _AUTHORIZATION.match(header)
    if match is None or match["service"] != SERVICE:
        return _failure("IncompleteSignatureException", "The request signature does not conform to AWS standards.")
    key = request.app[AWS_KEYRING].lookup(match["key"])
    if key is None or key.session_token != request.headers.get("X-Amz-Security-Token"):
        return _failure("UnrecognizedClientException", INVALID_TOKEN)
    now = now or datetime.datetime.now(datetime.UTC)
    if key.expired(now.timestamp()):
        return _failure("ExpiredTokenException", "The security token included in the request is expired")
    return _check_signature(request, body, match, secret=key.secret_access_key, token=key.session_token, now=now)


def _check_signature(
    request: web.Request,
    body: bytes,
    match: re.Match[str],
    *,
    secret: str,
    token: str | None,
    now: datetime.datetime,
) -> Failure | None:
    stamp = request.headers.get("X-Amz-Date", "")
    try:
        signed_at = datetime.datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=datetime.UTC)
    except ValueError:
        return _failure("IncompleteSignatureException", "Authorization header requires existence of X-Amz-Date.")
    if abs(now - signed_at) > MAX_SKEW:
        floor = (now - MAX_SKEW).strftime(SIGV4_TIMESTAMP)
        return _failure(
            "InvalidSignatureException",
            f"Signature expired: {stamp} is now earlier than {floor} ({now.strftime(SIGV4_TIMESTAMP)} - 5 min.)",
        )
    signed = match["signed"].split(";")
    headers = {name: ",".join(request.headers.getall(name, [])) for name in signed}
    aws_request = AWSRequest(request.method, f"http://{request.host}{request.raw_path}", data=body, headers=headers)
    aws_request.context["timestamp"] = stamp
    signer = SigV4Auth(ReadOnlyCredentials(match["key"], secret, token), SERVICE, match["region"])
    canonical = signer.canonical_request(aws_request)
    string_to_sign = signer.string_to_sign(aws_request, canonical)
    expected = signer.signature(string_to_sign, aws_request)
    if match["date"] == stamp[:8] and hmac.compare_digest(expected, match["signature"]):
        return None
    return _failure(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret"
        " Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String"
        f" for this request should have been\n'{canonical}'\n\n"
        f"The String-to-Sign should have been\n'{string_to_sign}'\n",
    )
