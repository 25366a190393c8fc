"""``GET /v1/models`` and ``GET /v1/models/{id}``: the names a caller may call, in the shape its SDK reads.

OpenAI's shape by default; Anthropic's (``type: model``, ``display_name``, ``has_more``) when the request
carries ``anthropic-version``, which the ``anthropic`` SDK always sends. A name the caller may not call is
as absent as one no route serves: the listing hides it too.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.keys import CALLER, STORE
from modelyard_proxy.table.store import CompiledTable

#: Anthropic's models carry a creation time; routes have none, so every model says the epoch.
EPOCH = "1970-01-01T00:00:00Z"
ANTHROPIC_VERSION_HEADER = "anthropic-version"


async def list_models(request: web.Request) -> web.Response:
    """Every public name and alias the caller may call (the OpenAI body computed once per table)."""
    compiled = _table(request)
    caller = request[CALLER]
    if ANTHROPIC_VERSION_HEADER not in request.headers:
        return web.Response(body=compiled.models_for(caller), content_type="application/json")
    names = [model["id"] for model in orjson.loads(compiled.models_for(caller))["data"]]
    body = {
        "data": [_anthropic_model(name) for name in names],
        "has_more": False,
        "first_id": names[0] if names else None,
        "last_id": names[-1] if names else None,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def retrieve_model(request: web.Request) -> web.Response:
    """One model by name; 404 ``model_not_found`` when no route serves it for this caller."""
    name = request.match_info["model"]
    compiled = _table(request)
    route = compiled.lookup(name)
    if route is None or not request[CALLER].allows(name, route.route):
        raise GatewayError(
            404,
            f"the model {name!r} does not exist or is not served by this gateway",
            param="model",
            code="model_not_found",
        )
    if ANTHROPIC_VERSION_HEADER in request.headers:
        body = orjson.dumps(_anthropic_model(name))
    else:
        body = orjson.dumps({"id": name, "object": "model", "created": 0, "owned_by": "modelyard"})
    return web.Response(body=body, content_type="application/json")


def _anthropic_model(name: str) -> dict[str, str]:
    return {"type": "model", "id": name, "display_name": name, "created_at": EPOCH}


def _table(request: web.Request) -> CompiledTable:
    compiled = request.app[STORE].current
    assert compiled is not None  # the auth middleware refuses requests until a table is loaded
    return compiled
