"""Every failure the gateway reports, in OpenAI's error shape, so any OpenAI SDK raises the right exception."""

from __future__ import annotations

from collections.abc import Mapping

import orjson


class GatewayError(Exception):
    """A failure answered as ``{"error": {message, type, param, code}}`` with an HTTP status.

    ``retryable`` tells the relay whether another attempt may succeed; ``retry_after`` (seconds) is sent
    back to the client as ``Retry-After`` when set.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.retryable = retryable
        self.retry_after = retry_after
        #: Response headers the relay adds (which route and how many attempts served the request).
        self.extra_headers: dict[str, str] = {}
        #: The relay already counted it and wrote its audit line (else the middleware does, as a refusal).
        self.reported = False
        #: The connection cannot carry another request (its body was cut off or undecodable): close it.
        self.closes_connection = False

    def payload(self) -> dict[str, dict[str, str | None]]:
        """The error object as OpenAI sends it."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def body(self) -> bytes:
        """The JSON body of the error response."""
        return orjson.dumps(self.payload())

    def headers(self) -> Mapping[str, str]:
        """Extra response headers: ``Retry-After`` when the upstream asked for a pause."""
        if self.retry_after is None:
            return self.extra_headers
        return {**self.extra_headers, "Retry-After": str(max(1, round(self.retry_after)))}


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    """A 400 for input the gateway or the target provider cannot accept."""
    return GatewayError(400, message, param=param, code=code)


def unsupported_parameter(param: str, provider: str, why: str = "") -> GatewayError:
    """A 400 for a parameter that would change the answer but the provider cannot honour."""
    detail = f": {why}" if why else ""
    return GatewayError(
        400,
        f"{param!r} is not supported by the {provider} provider{detail}",
        param=param,
        code="unsupported_parameter",
    )
