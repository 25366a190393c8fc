"""The gateway's SigV4 signer gives exactly botocore's signature for the same request and time."""

from __future__ import annotations

import datetime
from unittest import mock

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from modelyard_proxy.cloudauth.sigv4 import SigV4Signer

NOW = datetime.datetime(2026, 12, 6, 21, 30, 5, tzinfo=datetime.UTC)
STATIC = ReadOnlyCredentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None)
TEMPORARY = ReadOnlyCredentials(
    "ASIAIOSFODNN7EXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", "IQoJb3JpZ2luX2Vj/token+="
)
URLS = [
    "https://bedrock-runtime.eu-west-1.amazonaws.com/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse",
    "https://bedrock-runtime.eu-west-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A1%3Ainference-profile%2Fx/converse-stream",
    "http://127.0.0.1:8443/model/amazon.titan-embed-text-v2%3A0/invoke?trace=1&a=b",
]
HEADERS = {
    "content-type": "application/json",
    "accept": "application/json",
    "X-Custom": "  spaced   value ",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "user-agent": "modelyard",
}


def botocore_authorization(
    url: str, body: bytes, credentials: ReadOnlyCredentials, at: datetime.datetime
) -> dict[str, str]:
    request = AWSRequest("POST", url, data=body, headers=dict(HEADERS))
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at.replace(tzinfo=None)):
        SigV4Auth(credentials, "bedrock", "eu-west-1").add_auth(request)
    return {name.lower(): value for name, value in request.headers.items()}


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("credentials", [STATIC, TEMPORARY], ids=["static", "temporary"])
@pytest.mark.parametrize("body", [b'{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}', b""])
def test_signature_equals_botocores(url: str, credentials: ReadOnlyCredentials, body: bytes) -> None:
    signer = SigV4Signer("bedrock", "eu-west-1")
    headers = dict(HEADERS)
    signer.sign("POST", url, headers, body, credentials=credentials, now=NOW)
    expected = botocore_authorization(url, body, credentials, NOW)
    assert headers["authorization"] == expected["authorization"]
    assert headers["x-amz-date"] == expected["x-amz-date"] == "20261206T213005Z"
    assert headers.get("x-amz-security-token") == expected.get("x-amz-security-token") == credentials.token
    assert "traceparent" not in headers["authorization"]  # left unsigned, as botocore leaves it


def test_the_cached_key_follows_the_date_and_the_secret() -> None:
    signer = SigV4Signer("bedrock", "eu-west-1")
    url, body = URLS[0], b"{}"
    for credentials, at in [(STATIC, NOW), (STATIC, NOW + datetime.timedelta(days=1)), (TEMPORARY, NOW)]:
        headers = dict(HEADERS)
        signer.sign("POST", url, headers, body, credentials=credentials, now=at)
        assert headers["authorization"] == botocore_authorization(url, body, credentials, at)["authorization"]
