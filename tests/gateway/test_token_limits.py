"""Output-token limits are checked once, the same way for every provider, before any upstream call."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from modelyard_simulator import RequestLog
from tests.gateway.test_providers import PROVIDERS

LIMITS: list[tuple[str, dict[str, Any]]] = [
    ("max_tokens", {"max_tokens": -5}),
    ("max_tokens", {"max_tokens": 0}),
    ("max_completion_tokens", {"max_completion_tokens": -1}),
    ("max_tokens", {"max_completion_tokens": 50, "max_tokens": -1}),  # a valid newer name does not hide it
]


@pytest.mark.parametrize(("param", "limits"), LIMITS)
@pytest.mark.parametrize("model", PROVIDERS)
async def test_a_limit_below_one_is_refused_before_any_upstream_call(
    client: openai.AsyncOpenAI, upstream_log: RequestLog, model: str, param: str, limits: dict[str, Any]
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], extra_body=limits
        )
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"
    assert f"'{param}' must be a positive integer" in caught.value.message
    assert len(upstream_log) == 0
