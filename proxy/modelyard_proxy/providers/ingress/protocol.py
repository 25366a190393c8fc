"""What the relay must know of one client protocol beyond translating it.

The relay is the same for every ingress: plan, attempts, the commit point, delivery. Where it looks at bytes the
client will see (does this stream frame carry content, is this whole answer complete, how does a failure look)
it asks the request's :class:`IngressProtocol`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

from modelyard_proxy.base.errors import GatewayError, bad_request
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.schemas import Schema


class IngressProtocol(abc.ABC):
    """One client protocol: its request checks, its answers' commit point and usage, its error shapes."""

    #: The schema requests arrive in.
    schema: ClassVar[Schema]
    #: The endpoint that serves it (``POST``); routes are registered from the protocols the registry lists.
    path: ClassVar[str]
    #: Answer ids are this prefix and the request id (``chatcmpl-``, ``msg_``, ``resp_``).
    id_prefix: ClassVar[str]
    #: The body field that holds the prompt, captured on spans only when the user opts in.
    prompt_field: ClassVar[str] = "messages"
    #: Client headers a native upstream of this protocol receives as sent (lower case), e.g. ``anthropic-beta``.
    forwarded_headers: ClassVar[tuple[str, ...]] = ()
    #: Requests may continue earlier answers, which the gateway keeps (``previous_response_id``).
    keeps_conversations: ClassVar[bool] = False

    @abc.abstractmethod
    def check_request(self, body: JSONObject, max_messages: int) -> None:
        """Raise a 400 :class:`GatewayError` naming the field when ``body`` is not a valid request of the
        protocol (shape only: what a provider cannot honour is the translator's to refuse)."""

    def wants_stream(self, body: JSONObject) -> bool:
        """Whether the client asked for a stream."""
        return body.get("stream") is True

    def parallel_tool_calls(self, body: JSONObject) -> bool:
        """False when the client asked for at most one tool call per answer (adapters whose upstream cannot be
        told so keep only the first)."""
        return body.get("parallel_tool_calls") is not False

    @abc.abstractmethod
    def estimate_view(self, body: JSONObject) -> JSONObject:
        """The request as Chat Completions sees it, for the prompt and output estimates of context windows and
        limits: ``messages`` (system text included), ``tools``, ``max_tokens``. Lenient: never raises."""

    @abc.abstractmethod
    def commits(self, frames: bytes) -> bool:
        """Whether translated stream ``frames`` reach the commit point: an event that carries content, or the
        stream's end. Raises ``ValueError`` (or ``MalformedAnswer``) for a frame the client could not parse."""

    @abc.abstractmethod
    def refused(self, frames: bytes) -> bool:
        """Whether stream ``frames`` end the answer on the provider's refusal (a content filter)."""

    @abc.abstractmethod
    def read_answer(self, body: bytes) -> tuple[JSONObject | None, bool]:
        """A whole translated answer's usage in OpenAI's shape (``prompt_tokens``, ``completion_tokens``,
        ``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``) and whether it
        was refused. Raises ``ValueError`` (or ``MalformedAnswer``) when it is not one complete answer."""

    @abc.abstractmethod
    def error_response(self, error: GatewayError) -> tuple[int, bytes]:
        """The status and JSON body that tell this protocol's SDKs about ``error``."""

    @abc.abstractmethod
    def error_frame(self, error: GatewayError) -> bytes:
        """The in-band event that ends a started stream on ``error`` (never a clean-looking end)."""

    def forwarded(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The client's headers a native upstream receives."""
        return {name: value for name in self.forwarded_headers if (value := headers.get(name)) is not None}


def required_model(body: JSONObject) -> str:
    """The body's ``model``, which every protocol requires: 400 naming it when absent or not a string."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a string", param="model")
    return model
