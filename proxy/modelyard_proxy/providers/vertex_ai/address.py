"""Where a Vertex AI call goes: ``{base_url}/projects/{project}/locations/{region}/publishers/{publisher}/models/
{model}:{method}``.

Vertex authenticates with an OAuth access token that the call authoriser adds (``cloudauth.google``), so the
calls built here carry no key: only the credential's own headers and the content type.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from modelyard_proxy.providers.base import CallContext, JSONObject, UpstreamCall
from modelyard_routing import Credential
from modelyard_routing.specs import VertexOptions

#: Where models are served when the credential names no region: Vertex's global endpoint.
GLOBAL = "global"


def options(credential: Credential) -> VertexOptions:
    """The credential's project and publisher (the spec requires them for vertex-ai: never missing in a table)."""
    if credential.vertex is None:
        msg = f"credential {credential.id} is a vertex-ai credential without spec.vertex"
        raise LookupError(msg)
    return credential.vertex


def model_url(credential: Credential, model: str, method: str) -> str:
    """The URL of ``method`` on ``model`` of the credential's publisher (``method`` may carry a query)."""
    vertex = options(credential)
    segments = (
        "projects",
        quote(vertex.project, safe=""),
        "locations",
        quote(credential.region or GLOBAL, safe=""),
        "publishers",
        vertex.publisher.value,
        "models",
        quote(model, safe="@"),  # Claude's ids carry their version after an ``@``
    )
    return f"{credential.base_url}/{'/'.join(segments)}:{method}"


def json_call(ctx: CallContext, method: str, body: JSONObject | bytes) -> UpstreamCall:
    """``POST`` of a JSON body to ``method`` on the context's upstream model."""
    credential = ctx.credential
    headers = {**credential.headers, "content-type": "application/json"}
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return UpstreamCall(model_url(credential, ctx.upstream_model, method), headers, raw)
