"""The responses a client may continue with ``previous_response_id``: what OpenAI keeps when ``store`` is on.

Only the conversation's size is kept (never its text): a continuation is billed for it as input, and
reports it as cached, the way a provider's prompt cache serves the unchanged prefix.
"""

from __future__ import annotations

from collections import OrderedDict

from aiohttp import web

#: Enough for any test run or demo; the oldest responses are forgotten first.
DEFAULT_LIMIT = 10_000


class ResponseStore:
    """Stored response ids with the tokens of the conversation up to and including each response."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._limit = limit
        self._tokens: OrderedDict[str, int] = OrderedDict()

    def remember(self, response_id: str, conversation_tokens: int) -> None:
        self._tokens[response_id] = conversation_tokens
        while len(self._tokens) > self._limit:
            self._tokens.popitem(last=False)

    def conversation_tokens(self, response_id: str) -> int | None:
        """None when the id was never stored (or was created with ``store: false``)."""
        return self._tokens.get(response_id)


RESPONSES = web.AppKey("modelyard_simulator.responses", ResponseStore)
