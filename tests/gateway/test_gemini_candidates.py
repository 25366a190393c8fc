"""``n`` and ``logprobs``/``top_logprobs`` on a Gemini route, through the OpenAI SDK and the simulator.

The gateway asks for ``candidateCount``, ``responseLogprobs`` and ``logprobs``; each candidate comes back as a
choice whose log probabilities are the ones the upstream sent, token for token.
"""

from __future__ import annotations

import openai

from modelyard_simulator import RequestLog
from modelyard_simulator.logprobs import token_logprob
from modelyard_simulator.tokens import tokenize

PROMPT = "Weather in Oslo?"
ANSWER = f"echo: {PROMPT}"


async def test_n_choices_with_top_logprobs(client: openai.AsyncOpenAI, upstream_log: RequestLog) -> None:
    completion = await client.chat.completions.create(
        model="gemini-flash", messages=[{"role": "user", "content": PROMPT}], n=2, logprobs=True, top_logprobs=3
    )
    config = upstream_log.last().body["generationConfig"]
    assert (config["candidateCount"], config["responseLogprobs"], config["logprobs"]) == (2, True, 3)
    assert [choice.index for choice in completion.choices] == [0, 1]
    tokens = tokenize(ANSWER)
    for choice in completion.choices:
        assert choice.message.content == ANSWER
        assert choice.logprobs is not None
        content = choice.logprobs.content or []
        assert [(t.token, t.logprob) for t in content] == [(t, token_logprob(t)) for t in tokens]
        for token in content:
            assert len(token.top_logprobs) == 3
            assert (token.top_logprobs[0].token, token.top_logprobs[0].logprob) == (token.token, token.logprob)
            assert token.bytes == list(token.token.encode())
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 2 * len(tokens)


async def test_logprobs_without_top_logprobs(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gemini-flash", messages=[{"role": "user", "content": PROMPT}], logprobs=True
    )
    (choice,) = completion.choices
    assert choice.logprobs is not None
    content = choice.logprobs.content or []
    assert "".join(t.token for t in content) == ANSWER
    assert all(t.top_logprobs == [] for t in content)
