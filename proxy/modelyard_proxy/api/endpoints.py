"""Requests for an endpoint the gateway does not serve, answered so that the caller can see the mistake:
the method and path it sent, and the endpoints that exist."""

from __future__ import annotations

from aiohttp import web

from modelyard_proxy.base.errors import GatewayError

API_PREFIX = "/v1"
#: Longest piece of the caller's path echoed back.
MAX_ECHOED_PATH = 200


def unserved(request: web.Request) -> GatewayError | None:
    """The 404 or 405 for a request no route matches; None when one does."""
    refusal = request.match_info.http_exception
    if refusal is None:
        return None
    method, path = request.method, request.path[:MAX_ECHOED_PATH]
    if isinstance(refusal, web.HTTPMethodNotAllowed):
        allowed = sorted(refusal.allowed_methods - {"HEAD"})
        error = GatewayError(
            405,
            f"{method} is not allowed on {path}; it takes {', '.join(allowed)}",
            code="method_not_allowed",
        )
        error.extra_headers["Allow"] = ", ".join(allowed)
        return error
    served = served_endpoints(request.app)
    hint = ""
    if not path.startswith(API_PREFIX + "/") and f"{method} {API_PREFIX}{path}" in served:
        hint = f" (the base URL lacks {API_PREFIX}?)"
    return GatewayError(
        404,
        f"Invalid URL ({method} {path}){hint}: this gateway serves {', '.join(served)}",
        code="unsupported_endpoint",
    )


def served_endpoints(app: web.Application) -> list[str]:
    """``METHOD /path`` for every route of ``app`` (without the HEAD aiohttp adds to each GET)."""
    return [
        f"{route.method} {route.resource.canonical}"
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    ]
