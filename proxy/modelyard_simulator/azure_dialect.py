"""Azure OpenAI: OpenAI payloads behind deployment paths, ``api-key`` auth and Azure headers.

Classic paths ``/openai/deployments/{deployment}/...`` require ``?api-version=`` and a
known deployment (when the book lists them); the v1 paths ``/openai/v1/...`` need neither.
Responses live at ``/openai/v1/responses`` and, in the dated API, ``/openai/responses?api-version=``,
where the body's ``model`` names the deployment.
"""

from __future__ import annotations

from aiohttp import web

from modelyard_simulator.engine import SCENARIOS, JsonObject, ResponseMeta, Target, bearer, no_target, serve_exchange
from modelyard_simulator.errors import Failure, format_seconds
from modelyard_simulator.openai_dialect import (
    OpenAIDialect,
    chat_target,
    embeddings_target,
    respond_chat,
    respond_embeddings,
    respond_models,
)
from modelyard_simulator.responses_dialect import respond_responses
from modelyard_simulator.responses_request import responses_target

_ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource."
)
_MISSING_KEY = (
    "Access denied due to missing subscription key. Make sure to include subscription key when making "
    "requests to an API."
)
_NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the deployment within the "
    "last 5 minutes, please wait a moment and try again."
)


class AzureDialect(OpenAIDialect):
    """Azure's differences from OpenAI: key header, 401 wording, headers, content-filter annotations."""

    content_filter_annotations = True
    key_required = True

    def presented_key(self, request: web.Request) -> str | None:
        return request.headers.get("api-key") or bearer(request)

    def auth_failure(self, presented: str | None) -> Failure:
        return Failure(401, _ACCESS_DENIED if presented else _MISSING_KEY, code="401")

    def error_payload(self, failure: Failure, meta: ResponseMeta) -> JsonObject:
        payload = super().error_payload(failure, meta)
        if failure.message is None and failure.status == 429 and meta.retry_after is not None:
            seconds = format_seconds(meta.retry_after)
            payload["error"]["message"] = f"Rate limit is exceeded. Try again in {seconds} seconds."
        payload["error"]["code"] = payload["error"]["code"] or str(failure.status)
        return payload

    def headers(self, meta: ResponseMeta) -> dict[str, str]:
        headers = super().headers(meta)
        headers["apim-request-id"] = meta.request_id
        headers["x-ms-region"] = "Simulated Region"
        if meta.retry_after is not None:
            headers["retry-after-ms"] = str(int(meta.retry_after * 1000))
        return headers


AZURE = AzureDialect()


def _classic_target(inner: Target) -> Target:
    """Wrap a target with Azure's classic-path checks: api-version present, deployment known.

    The deployment is the path's, or the body's ``model`` on paths without one (``/openai/responses``).
    """

    def target(body: JsonObject, request: web.Request) -> tuple[str, str]:
        if "api-version" not in request.query:
            raise Failure(404, "Resource not found", code="404")
        model, text = inner(body, request)
        deployment = request.match_info.get("deployment", model)
        known = request.app[SCENARIOS].deployments
        if known is not None and deployment not in known:
            raise Failure(404, _NO_DEPLOYMENT, code="DeploymentNotFound")
        return deployment, text

    return target


_CHAT = _classic_target(chat_target)
_EMBEDDINGS = _classic_target(embeddings_target)
_RESPONSES = _classic_target(responses_target)


async def deployment_chat(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, AZURE, _CHAT, respond_chat)


async def deployment_embeddings(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, AZURE, _EMBEDDINGS, respond_embeddings)


async def v1_chat(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, AZURE, chat_target, respond_chat)


async def v1_embeddings(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, AZURE, embeddings_target, respond_embeddings)


async def responses(request: web.Request) -> web.StreamResponse:
    """``POST /openai/responses?api-version=...``."""
    return await serve_exchange(request, AZURE, _RESPONSES, respond_responses)


async def v1_responses(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, AZURE, responses_target, respond_responses)


async def v1_models(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, AZURE, no_target, respond_models)
