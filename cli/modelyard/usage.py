"""``modelyard usage``: ask a proxy's admin port what each consumer spent, and print it.

Every failure (no token, a refused token, nothing listening, an answer that is not a usage report) becomes
one line on stderr and a non-zero exit, never a traceback; the token is sent and never printed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import orjson
from pydantic import ValidationError

from modelyard.usage_tables import render_report
from modelyard_routing.conditions import describe_validation_error
from modelyard_routing.push import AdminToken
from modelyard_routing.usage import ADMIN_USAGE_PATH, UsageReport

#: Where `serve` and the operator read the admin token: the token itself, or the file holding it.
VALUE_ENV = "MODELYARD_ADMIN_TOKEN"
FILE_ENV = "MODELYARD_ADMIN_TOKEN_FILE"
#: A month of days for every model of hundreds of consumers fits well below this.
MAX_REPORT_BYTES = 64 * 1024 * 1024
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A failure the user can act on; its message is printed as it is."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class UsageRequest:
    """Where to ask, with which token, for how many days, and how long to wait at most."""

    admin_url: str
    token: str
    days: int
    timeout: float

    def __post_init__(self) -> None:
        parts = urlsplit(self.admin_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"--admin-url {self.admin_url!r} is not an http(s) URL such as http://127.0.0.1:8081", EXIT_USAGE
            )

    @property
    def url(self) -> str:
        return f"{self.admin_url.rstrip('/')}{ADMIN_USAGE_PATH}?days={self.days}"


def admin_token(token_file: Path | None) -> str:
    """The token as ``serve`` reads it: the file if named (flag, then env), else ``MODELYARD_ADMIN_TOKEN``."""
    path = token_file or (Path(os.environ[FILE_ENV]) if os.environ.get(FILE_ENV) else None)
    token = AdminToken.from_env(path, VALUE_ENV).value()
    if token:
        return token
    if path is not None:
        raise UsageError(f"no admin token in {path} (missing, unreadable or empty)", EXIT_USAGE)
    raise UsageError(f"the admin port needs a token (--token-file or {VALUE_ENV})", EXIT_USAGE)


async def fetch_report(request: UsageRequest) -> UsageReport:
    """GET the usage endpoint and parse its answer; raises UsageError with a message for every failure."""
    timeout = aiohttp.ClientTimeout(total=request.timeout)
    headers = {"Authorization": f"Bearer {request.token}", "Accept": "application/json"}
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(request.url, headers=headers, allow_redirects=False) as response,
        ):
            body = await response.content.read(MAX_REPORT_BYTES + 1)
            status = response.status
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError):
        raise UsageError(f"{request.admin_url!r} is not an http(s) URL", EXIT_USAGE) from None
    except TimeoutError:
        raise UsageError(f"{request.admin_url} did not answer within {request.timeout:g}s") from None
    except aiohttp.ClientConnectionError as exc:
        raise UsageError(f"cannot reach {request.admin_url}: {_reason(exc)}") from None
    except aiohttp.ClientError as exc:
        raise UsageError(f"request to {request.admin_url} failed: {type(exc).__name__}") from None
    except ValueError:
        # aiohttp refuses a header value with control characters; say so without echoing the token.
        raise UsageError("the admin token holds characters an HTTP header cannot carry", EXIT_USAGE) from None
    return _parse(request, status, body)


def _reason(exc: aiohttp.ClientConnectionError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused (is the admin port enabled, and port-forwarded from a cluster?)"
        return exc.os_error.strerror or type(exc.os_error).__name__
    return str(exc) or type(exc).__name__


def _parse(request: UsageRequest, status: int, body: bytes) -> UsageReport:
    if status in (401, 403):
        raise UsageError(
            f"{request.admin_url} refused the admin token (HTTP {status}); "
            f"check --token-file or {VALUE_ENV} against the proxy's admin token"
        )
    if status == 404:
        raise UsageError(f"{request.admin_url} has no {ADMIN_USAGE_PATH} (HTTP 404): is this a Modelyard admin port?")
    if status != 200:
        raise UsageError(f"{request.admin_url} answered HTTP {status}{_message(body)}")
    if len(body) > MAX_REPORT_BYTES:
        raise UsageError(f"the usage report from {request.admin_url} is larger than {MAX_REPORT_BYTES} bytes")
    try:
        return UsageReport.model_validate(orjson.loads(body))
    except orjson.JSONDecodeError:
        raise UsageError(f"{request.admin_url} answered something that is not JSON") from None
    except ValidationError as exc:
        detail = describe_validation_error(exc, prefix="report")
        raise UsageError(f"{request.admin_url} answered JSON that is not a usage report: {detail}") from None


def _message(body: bytes) -> str:
    """The admin port's ``{"message": ...}`` when the error body carries one."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    message = document.get("message") if isinstance(document, dict) else None
    return f": {message}" if isinstance(message, str) and message else ""


def only_consumer(report: UsageReport, name: str) -> UsageReport:
    """The report narrowed to one consumer, named ``namespace/name`` or by its name alone."""
    chosen = tuple(c for c in report.consumers if name in (c.name, c.name.partition("/")[2]))
    if not chosen:
        known = ", ".join(c.name for c in report.consumers) or "none"
        raise UsageError(f"no consumer {name!r} in the report (consumers: {known})")
    return report.model_copy(update={"consumers": chosen})


def run_usage(
    *, admin_url: str, token_file: Path | None, days: int, consumer: str | None, as_json: bool, timeout: float
) -> int:
    """The whole command: token, request, optional filter, then tables or JSON on stdout."""
    try:
        request = UsageRequest(admin_url, admin_token(token_file), days, timeout)
        report = asyncio.run(fetch_report(request))
        if consumer is not None:
            report = only_consumer(report, consumer)
    except UsageError as exc:
        print(f"modelyard usage: {exc}", file=sys.stderr)
        return exc.code
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(render_report(report))
    return 0
