"""The aiohttp application: routes for every simulated provider, plus the control endpoints."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from modelyard_simulator import (
    anthropic_dialect,
    aws_identity_endpoints,
    azure_dialect,
    bedrock_dialect,
    gemini_dialect,
    google_auth,
    openai_dialect,
    responses_dialect,
    vertex_dialect,
)
from modelyard_simulator.aws_keys import AWS_KEYRING, AwsKeyring
from modelyard_simulator.behaviour import ScenarioBook
from modelyard_simulator.engine import SCENARIOS
from modelyard_simulator.log import REQUEST_LOG, RequestLog, clear_requests, list_requests, record_requests
from modelyard_simulator.response_store import RESPONSES, ResponseStore

logger = logging.getLogger(__name__)

# Requests with inline images or documents are large; real providers accept tens of MB.
MAX_REQUEST_BYTES = 64 * 1024 * 1024


async def _models(request: web.Request) -> web.StreamResponse:
    """``GET /v1/models`` is shared by OpenAI and Anthropic; ``anthropic-version`` tells them apart."""
    if "anthropic-version" in request.headers:
        return await anthropic_dialect.models(request)
    return await openai_dialect.models(request)


def create_app(scenarios: ScenarioBook | None = None) -> web.Application:
    """Build the simulator; ``app[REQUEST_LOG]`` and ``app[SCENARIOS]`` stay mutable for tests."""
    book = scenarios if scenarios is not None else ScenarioBook()
    app = web.Application(middlewares=[record_requests], client_max_size=MAX_REQUEST_BYTES)
    app[SCENARIOS] = book
    app[REQUEST_LOG] = RequestLog(book.record_limit)
    app[RESPONSES] = ResponseStore()
    app[AWS_KEYRING] = AwsKeyring()
    app[google_auth.GOOGLE_AUTH] = google_auth.GoogleAuthority()

    router = app.router
    router.add_post("/v1/chat/completions", openai_dialect.chat_completions)
    router.add_post("/v1/embeddings", openai_dialect.embeddings)
    router.add_post("/v1/responses", responses_dialect.responses)
    router.add_get("/v1/models", _models)

    router.add_post("/openai/deployments/{deployment}/chat/completions", azure_dialect.deployment_chat)
    router.add_post("/openai/deployments/{deployment}/embeddings", azure_dialect.deployment_embeddings)
    router.add_post("/openai/v1/chat/completions", azure_dialect.v1_chat)
    router.add_post("/openai/v1/embeddings", azure_dialect.v1_embeddings)
    router.add_post("/openai/v1/responses", azure_dialect.v1_responses)
    router.add_post("/openai/responses", azure_dialect.responses)
    router.add_get("/openai/v1/models", azure_dialect.v1_models)

    router.add_post("/v1/messages", anthropic_dialect.messages)
    router.add_post("/v1/messages/count_tokens", anthropic_dialect.count_tokens)

    for version in ("v1beta", "v1"):
        router.add_post(f"/{version}/models/{{model_action}}", gemini_dialect.dispatch)
    router.add_get("/v1beta/models", gemini_dialect.list_models)

    # Bedrock model ids, profiles and ARNs arrive percent-encoded whole (``%3A``, ``%2F``).
    router.add_post("/model/{model}/converse", bedrock_dialect.converse)
    router.add_post("/model/{model}/converse-stream", bedrock_dialect.converse_stream)
    router.add_post("/model/{model}/invoke", bedrock_dialect.invoke)
    vertex_model = "/projects/{project}/locations/{location}/publishers/{publisher}/models/{model_action}"
    for version in ("v1", "v1beta1"):
        router.add_post(f"/{version}{vertex_model}", vertex_dialect.dispatch)
    router.add_post("/token", google_auth.token)
    router.add_get("/", google_auth.metadata_ping)
    router.add_get("/computeMetadata/v1/{path:.*}", google_auth.metadata)
    # What a pod without static AWS keys gets them from: STS (IRSA, ``POST /``) and the EKS Pod Identity agent.
    aws_identity_endpoints.add_routes(app, app[AWS_KEYRING])

    router.add_get("/_simulator/requests", list_requests)
    router.add_delete("/_simulator/requests", clear_requests)
    return app


async def serve(host: str, port: int, scenarios: ScenarioBook | None, until: asyncio.Event | None = None) -> None:
    """Serve until ``until`` is set, or until cancelled (the ``modelyard simulate`` entry point).

    As a container's first process a signal's default action does not apply, so the command passes an event
    that SIGTERM sets: without it a pod running the simulator would wait out its whole grace period.
    """
    runner = web.AppRunner(create_app(scenarios))
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        logger.info("provider simulator listening on %s", ", ".join(map(str, runner.addresses)))
        await (until or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
