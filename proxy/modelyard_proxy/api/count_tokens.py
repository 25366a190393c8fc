"""``POST /v1/messages/count_tokens``: Anthropic's token count of a Messages request, ``{"input_tokens": N}``.

The route's first target decides how it is counted. Anthropic counts it itself (the request goes to its
``/messages/count_tokens`` with the target's model, as the client sent it otherwise), and so does Gemini (the
request as it would be generated, sent to ``countTokens``). For the OpenAI family, whose Chat Completions API
has no counting endpoint, the answer is an estimate: text and tool definitions at four characters a
token (what OpenAI's and Anthropic's tokenizers average on English prose; code and other scripts take more),
each image at :data:`~modelyard_proxy.relay.estimate.IMAGE_TOKENS`, and each message its framing tokens
(:func:`~modelyard_proxy.relay.estimate.chat_tokens_typical`).
Counting costs nothing upstream, so no consumer limit or budget is charged; the caller must still be allowed
to call the model.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from modelyard_proxy.api.handlers import lookup_route, read_inbound
from modelyard_proxy.base.errors import GatewayError, bad_request
from modelyard_proxy.keys import CALLER, SETTINGS, UPSTREAM
from modelyard_proxy.providers.anthropic_messages_to_anthropic_messages.adapter import upstream_call
from modelyard_proxy.providers.base import CallContext, Inbound, UpstreamCall
from modelyard_proxy.providers.ingress import anthropic_messages
from modelyard_proxy.providers.ingress.anthropic_messages import MESSAGES
from modelyard_proxy.providers.registry import adapter_for
from modelyard_proxy.providers.schemas import Schema
from modelyard_proxy.relay import estimate
from modelyard_proxy.relay.attempt import whole_exchange
from modelyard_proxy.relay.quota import model_not_allowed
from modelyard_proxy.table.store import PLAIN_KEY, ResolvedTarget
from modelyard_routing import Provider


async def count_tokens(request: web.Request) -> web.Response:
    """Count the request's input tokens as its model's first target would."""
    inbound = await read_inbound(request, Schema.ANTHROPIC_MESSAGES)
    body = inbound.body
    anthropic_messages.check_messages(body.get("messages"), request.app[SETTINGS].max_messages)
    anthropic_messages.check_system(body.get("system"))
    anthropic_messages.check_tools(body.get("tools"), body.get("tool_choice"))
    name, route = lookup_route(request, body)
    caller = request.get(CALLER, PLAIN_KEY)
    if caller.consumer is not None and not caller.allows(name, route.route):
        raise model_not_allowed(caller.consumer, name)
    if not route.targets.targets:
        raise bad_request(f"the model {name!r} has no target to count for", param="model")
    first = route.targets.targets[0]
    ctx = CallContext(
        public_model=name,
        upstream_model=first.target.model,
        credential=first.credential,
        forwarded_headers=MESSAGES.forwarded(request.headers),
    )
    provider = first.credential.provider
    if provider is Provider.ANTHROPIC:
        call = upstream_call(inbound, ctx, "messages/count_tokens")
        tokens = await _counted(request, first, call, ctx, "input_tokens")
    elif provider is Provider.GEMINI:
        tokens = await _counted(request, first, _gemini_count_call(inbound, ctx), ctx, "totalTokens")
    else:
        tokens = estimate.chat_tokens_typical(MESSAGES.estimate_view(body))
    return web.Response(body=orjson.dumps({"input_tokens": tokens}), content_type="application/json")


def _gemini_count_call(inbound: Inbound, ctx: CallContext) -> UpstreamCall:
    """Gemini's ``countTokens`` for the request it would be sent as: the ``generateContent`` call, re-aimed."""
    # A count request has no max_tokens; the generated request's output settings do not count anyway.
    body = {key: value for key, value in inbound.body.items() if key not in ("thinking", "output_config")}
    body.update(max_tokens=1, stream=False)
    generate = adapter_for(Provider.GEMINI, Schema.ANTHROPIC_MESSAGES).chat_call(
        Inbound(body, None, inbound.schema), ctx
    )
    request = {"model": f"models/{ctx.upstream_model}", **orjson.loads(generate.body)}
    request.pop("generationConfig", None)
    url = generate.url.replace(":generateContent", ":countTokens")
    return UpstreamCall(url, generate.headers, orjson.dumps({"generateContentRequest": request}))


async def _counted(
    request: web.Request, resolved: ResolvedTarget, call: UpstreamCall, ctx: CallContext, field: str
) -> int:
    """The provider's own count, read from ``field`` of its answer; its failures as the gateway's errors."""
    settings = request.app[SETTINGS]
    adapter = adapter_for(resolved.credential.provider, Schema.ANTHROPIC_MESSAGES)
    payload = await whole_exchange(
        request.app[UPSTREAM], adapter, resolved, call, ctx, settings.connect_timeout, settings.read_timeout
    )
    try:
        counted = orjson.loads(payload)
    except orjson.JSONDecodeError:
        counted = None
    tokens = counted.get(field) if isinstance(counted, dict) else None
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        where = f"upstream {resolved.credential.provider.value} ({resolved.credential.id})"
        raise GatewayError(
            502,
            f"{where} answered something that is not a token count",
            type="upstream_error",
            code="upstream_malformed",
        )
    return tokens
