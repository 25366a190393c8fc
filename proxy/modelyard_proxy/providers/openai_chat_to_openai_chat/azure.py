"""Azure OpenAI: OpenAI's dialect at a deployment-scoped address, with an ``api-key`` header.

The classic style names the deployment in the path; the v1 style is plain OpenAI under ``/openai/v1``. Both
send the deployment as the body's ``model``: Azure ignores it on classic paths, but the client's public name
is the gateway's own and must not reach (and be logged by) the upstream.
Prompts blocked by content filtering come back as a 400 with code ``content_filter``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from urllib.parse import quote

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.failures.classify import scrub
from modelyard_proxy.providers.base import CallContext
from modelyard_proxy.providers.openai_chat_to_openai_chat.adapter import ErrorFields, OpenAIAdapter, parse_error
from modelyard_proxy.providers.openai_chat_to_openai_chat.quirks import QUIRKS
from modelyard_routing import Credential, Provider
from modelyard_routing.specs import AzureOptions

DEFAULT_OPTIONS = AzureOptions()
AZURE_QUIRKS = dataclasses.replace(QUIRKS[Provider.OPENAI], name="azure-openai")
CONTENT_FILTER_CODES = frozenset({"content_filter", "ResponsibleAIPolicyViolation"})
#: How Azure words a content-policy refusal when the code alone does not say so (LiteLLM's matcher).
CONTENT_FILTER_WORDING = re.compile(
    r"ResponsibleAIPolicyViolation|content_filter_policy|content management policy", re.I
)


class AzureOpenAIAdapter(OpenAIAdapter):
    """Azure OpenAI, addressed per ``credential.azure`` (classic deployments by default)."""

    def __init__(self) -> None:
        super().__init__(AZURE_QUIRKS)

    def _url(self, ctx: CallContext, operation: str) -> str:
        options = ctx.credential.azure or DEFAULT_OPTIONS
        base = ctx.credential.base_url
        if options.api == "v1":
            return f"{base}/openai/v1/{operation}"
        deployment = quote(self._body_model(ctx), safe="")
        return f"{base}/openai/deployments/{deployment}/{operation}?api-version={quote(options.api_version, safe='')}"

    def _body_model(self, ctx: CallContext) -> str:
        options = ctx.credential.azure or DEFAULT_OPTIONS
        if options.api == "v1":
            return ctx.upstream_model
        return options.deployment or ctx.upstream_model

    def _auth_headers(self, credential: Credential) -> dict[str, str]:
        if credential.api_key is None:
            return {}
        return {"api-key": credential.api_key.get_secret_value()}

    def error_from(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
        fields = parse_error(payload)
        if _content_filtered(fields):
            return GatewayError(
                400,
                scrub(fields.message, ctx.credential) or "the request was blocked by Azure content filtering",
                code="content_filter",
                param=fields.param,
            )
        return self._classify(status, headers, fields, ctx)


def _content_filtered(fields: ErrorFields) -> bool:
    return (
        fields.code in CONTENT_FILTER_CODES
        or fields.inner_code in CONTENT_FILTER_CODES
        or bool(CONTENT_FILTER_WORDING.search(fields.message))
    )
