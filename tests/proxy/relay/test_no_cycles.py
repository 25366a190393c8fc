"""A served request leaves none of the relay's objects in a reference cycle.

The proxy freezes its start-up heap and collects young objects rarely (serving/gctuning.py): a request
whose objects formed a cycle would leave them to the cyclic collector, whose passes over every request's
leftovers show as millisecond stalls. With the collector off, each object of a finished request must be
freed the moment the last reference goes, which is what this checks.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import openai
import pytest
from aiohttp import test_utils

from modelyard_proxy.relay import attempt, plan, reporting, run
from tests.harness import DEMO_KEY

RELAY_TYPES = (run.Run, attempt.Attempts, plan.Plan, reporting.RunRecord)


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def relay_objects_in_cycles() -> list[object]:
    """The relay's objects that only the cyclic collector could free (found with it, then dropped)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found: list[object] = [o for o in gc.garbage if isinstance(o, RELAY_TYPES)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return found


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_served_chat_leaves_no_relay_object_in_a_cycle(
    gateway: test_utils.TestServer, collector_off: None, stream: bool
) -> None:
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as sdk:
        for model in ("gpt-4o", "claude-sonnet"):
            if stream:
                async for _ in await sdk.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "hi"}], stream=True
                ):
                    pass
            else:
                await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        await sdk.embeddings.create(model="text-embedding-3-small", input="hi")
    assert relay_objects_in_cycles() == []
