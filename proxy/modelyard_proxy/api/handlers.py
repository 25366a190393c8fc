"""The API surface and the health probes: thin handlers over parsing, lookup and the relay.

Every client protocol (Chat Completions, Messages, Responses) is served by the same handler, built per
protocol: the protocol checks the body, the route is looked up by ``model``, and the relay does the rest.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from modelyard_proxy.api.bodyshape import check_depth, check_values
from modelyard_proxy.base.errors import GatewayError, bad_request
from modelyard_proxy.keys import SETTINGS, STORE
from modelyard_proxy.providers.base import Inbound
from modelyard_proxy.providers.ingress.protocol import IngressProtocol, required_model
from modelyard_proxy.providers.schemas import Schema
from modelyard_proxy.relay.run import relay_chat, relay_embeddings
from modelyard_proxy.table.store import ResolvedRoute

#: The path segment naming the model on Azure-style paths (``/openai/deployments/{deployment}/...``).
DEPLOYMENT = "deployment"


async def read_inbound(request: web.Request, schema: Schema = Schema.OPENAI_CHAT) -> Inbound:
    """The body as a JSON object, within the settings' bounds on time, size, values and depth; 400, 408 or
    413 otherwise."""
    settings = request.app[SETTINGS]
    raw = await read_body(request, settings.body_timeout)
    check_values(raw, settings.max_json_values)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    check_depth(raw, body, settings.max_json_depth)
    if (deployment := request.match_info.get(DEPLOYMENT)) is not None:
        # Azure's addressing: the deployment in the path is the model, whatever the body says.
        body["model"] = deployment
        raw = orjson.dumps(body)
    return Inbound(body, raw, schema)


async def read_body(request: web.Request, within: float) -> bytes:
    """The whole (decompressed) body, within ``within`` seconds unless it is all here already; 413 (via
    aiohttp) past the size limit, counted after decompression."""
    try:
        if request.content.is_eof():
            return await request.read()
        async with asyncio.timeout(within):
            return await request.read()
    except TimeoutError:
        error = GatewayError(408, f"the request body did not arrive within {within:g} s", code="request_timeout")
    except web.RequestPayloadError as exc:
        cause = exc.__cause__  # aiohttp's own message names the encoding it could not decode
        reason = cause.message if isinstance(cause, HttpProcessingError) else str(exc)
        error = bad_request(f"request body could not be read: {reason}", code="invalid_body_encoding")
    error.closes_connection = True  # the rest of the body would be read as the next request
    raise error


def lookup_route(request: web.Request, body: dict[str, Any]) -> tuple[str, ResolvedRoute]:
    """The route for the body's ``model``; 400 when absent, 404 when no route serves it."""
    model = required_model(body)
    compiled = request.app[STORE].current
    route = compiled.lookup(model) if compiled else None
    if route is None:
        raise GatewayError(
            404,
            f"the model {model!r} does not exist or is not served by this gateway",
            type="invalid_request_error",
            param="model",
            code="model_not_found",
        )
    return model, route


def protocol_endpoint(protocol: IngressProtocol) -> Handler:
    """``POST {protocol.path}``: the body checked by its protocol, then relayed like any other."""

    async def serve(request: web.Request) -> web.StreamResponse:
        inbound = await read_inbound(request, protocol.schema)
        protocol.check_request(inbound.body, request.app[SETTINGS].max_messages)
        name, route = lookup_route(request, inbound.body)
        return await relay_chat(request, inbound, name, route)

    serve.__name__ = serve.__qualname__ = f"serve_{protocol.schema.name.lower()}"
    return serve


async def embeddings(request: web.Request) -> web.StreamResponse:
    """``POST /v1/embeddings``."""
    inbound = await read_inbound(request)
    value = inbound.body.get("input")
    if value is None or value in ("", []):
        raise bad_request("'input' is required and must not be empty", param="input")
    name, route = lookup_route(request, inbound.body)
    return await relay_embeddings(request, inbound, name, route)


async def healthz(_: web.Request) -> web.Response:
    """Liveness: the process is serving HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: a routing table is loaded; reports its generation, hash and the last refusal."""
    store = request.app[STORE]
    compiled = store.current
    body = {
        "ready": compiled is not None,
        "generation": compiled.table.generation if compiled else None,
        "sha256": compiled.table.sha256 if compiled else None,
        "routes": len(compiled.table.routes) if compiled else 0,
        "lastError": store.last_error,
    }
    return web.json_response(body, status=200 if compiled is not None else 503)
