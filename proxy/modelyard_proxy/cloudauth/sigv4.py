"""AWS Signature Version 4 with botocore's canonicalisation, at under half its per-request CPU.

botocore's ``SigV4Auth.add_auth`` costs about 60 to 85 µs per request here (``bench/signing.py``), over the
gateway's 50 µs budget for signing. Most of it is not the cryptography: the headers to sign are collected
into an ``email.message.Message`` twice per request (and read back through its slow ``get_all``), the
signing key is derived with four HMACs on every call though it changes once a day, and ``AWSRequest`` is
built only to be read. :class:`SigV4Signer` subclasses ``SigV4Auth`` and changes exactly those three
things: the headers to sign are selected once, with botocore's own exclusion list and Host rule, into a
plain mapping; the key is cached per secret, date, region and service; and a slotted request stands in
for ``AWSRequest``. The canonical request, the string to sign and the signature are botocore's own methods,
and ``tests/providers_bedrock/test_sigv4.py`` checks the result equals ``SigV4Auth.add_auth``'s.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Callable, Iterator, Mapping
from http.client import HTTPMessage
from typing import cast

from botocore import auth
from botocore.auth import SIGNED_HEADERS_BLACKLIST, SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

_UNSIGNED = frozenset(SIGNED_HEADERS_BLACKLIST)
#: botocore's Host header rule (lower case, the port only when not the scheme's default, IPv6 bracketed).
_host_from_url: Callable[[str], str] = auth._host_from_url  # type: ignore[attr-defined]


class _HeadersToSign:
    """The lower-cased headers a signature covers, read by botocore's ``canonical_headers``/``signed_headers``
    through the two methods they use of ``HTTPHeaders`` (iteration and ``get_all``)."""

    __slots__ = ("_values",)

    def __init__(self, headers: Mapping[str, str], url: str) -> None:
        values: dict[str, list[str]] = {}
        for name, value in headers.items():
            lower = name.lower()
            if lower not in _UNSIGNED:
                values.setdefault(lower, []).append(value)
        if "host" not in values:
            values["host"] = [_host_from_url(url)]
        self._values = values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def get_all(self, name: str) -> list[str]:
        return self._values[name]


class _Request:
    """What botocore's signing methods read of an ``AWSRequest``."""

    __slots__ = ("body", "context", "headers", "method", "params", "signed", "url")

    def __init__(self, method: str, url: str, headers: Mapping[str, str], body: bytes, timestamp: str) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.params: dict[str, str] = {}
        self.context = {"timestamp": timestamp}
        self.signed = _HeadersToSign(headers, url)


class SigV4Signer(SigV4Auth):
    """One credential's signer for one service and region; cheap to call once per request."""

    def __init__(self, service: str, region: str) -> None:
        super().__init__(ReadOnlyCredentials("", "", None), service, region)
        self._scope = (region, service, "aws4_request")
        self._secret = ""
        self._key_scope: tuple[str, str] | None = None
        self._key = b""

    def sign(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        credentials: ReadOnlyCredentials,
        now: datetime.datetime | None = None,
    ) -> None:
        """Add ``x-amz-date``, ``x-amz-security-token`` (temporary credentials) and ``authorization`` to
        ``headers``, covering every header already there except the ones AWS leaves unsigned."""
        timestamp = (now or datetime.datetime.now(datetime.UTC)).strftime(SIGV4_TIMESTAMP)
        headers["x-amz-date"] = timestamp
        if credentials.token:
            headers["x-amz-security-token"] = credentials.token
        self.credentials = credentials
        self._secret = credentials.secret_key or ""
        request = _Request(method, url, headers, body, timestamp)
        as_botocores = cast("AWSRequest", request)  # it reads only what ``_Request`` has
        canonical = self.canonical_request(as_botocores)
        signature = self.signature(self.string_to_sign(as_botocores, canonical), as_botocores)
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.scope(as_botocores)}, "
            f"SignedHeaders={self.signed_headers(request.signed)}, Signature={signature}"
        )

    def headers_to_sign(self, request: AWSRequest) -> HTTPMessage:
        """Selected once per request (botocore selects them twice, into an ``email.message.Message``)."""
        return cast("HTTPMessage", cast("_Request", request).signed)

    def signature(self, string_to_sign: str, request: AWSRequest) -> str:
        """botocore's derivation, the signing key cached until the secret or the date changes."""
        date: str = request.context["timestamp"][0:8]
        scope = (self._secret, date)
        if scope != self._key_scope:
            key = _hmac(f"AWS4{self._secret}".encode(), date)
            for part in self._scope:
                key = _hmac(key, part)
            self._key, self._key_scope = key, scope
        return hmac.new(self._key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
