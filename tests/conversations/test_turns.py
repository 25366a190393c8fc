"""A Responses API turn made stateless for the upstream, and its conversation kept afterwards, on both backends."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.conversations import ConversationStore, Resolved, remember, resolve
from tests.conversations.kit import OTHER_OWNER, OWNER, TTL_S, answer, assistant, function_call, reasoning, user


async def turn(
    store: ConversationStore, body: dict[str, Any], response: dict[str, Any], owner: str = OWNER
) -> Resolved:
    """One request: resolved, answered with ``response``, remembered."""
    resolved = await resolve(body, owner, store)
    assert await remember(owner, resolved, response, store, TTL_S) == ("stored" if resolved.remember else "skipped")
    return resolved


async def test_a_string_input_is_one_user_message_and_the_upstream_keeps_nothing(store: ConversationStore) -> None:
    body = {"model": "fast", "input": "Hi", "instructions": "Be brief.", "temperature": 0.2}
    resolved = await resolve(body, OWNER, store)
    assert resolved.body == {
        "model": "fast",
        "input": [user("Hi")],
        "instructions": "Be brief.",
        "temperature": 0.2,
        "store": False,
    }
    assert resolved.input_items == [user("Hi")]
    assert resolved.remember
    assert body["input"] == "Hi"  # the client's body is left as it came


async def test_a_body_without_input_gets_none(store: ConversationStore) -> None:
    prompt = {"id": "pmpt_1", "variables": {"city": "Oslo"}}
    resolved = await resolve({"model": "fast", "prompt": prompt}, OWNER, store)
    assert resolved.body == {"model": "fast", "prompt": prompt, "store": False}
    assert resolved.input_items == []


async def test_three_turns_chained_by_previous_response_id_send_the_whole_conversation(
    store: ConversationStore,
) -> None:
    await turn(store, {"model": "fast", "input": "One?"}, answer("resp_1", assistant("msg_1", "1")))
    second = await turn(
        store,
        {"model": "fast", "input": "Two?", "previous_response_id": "resp_1"},
        answer("resp_2", assistant("msg_2", "2")),
    )
    assert second.body["input"] == [user("One?"), assistant("msg_1", "1"), user("Two?")]
    assert "previous_response_id" not in second.body
    assert second.body["store"] is False

    third = await resolve(
        {"model": "fast", "input": [user("Three?")], "previous_response_id": "resp_2", "store": True}, OWNER, store
    )
    assert third.body["input"] == [
        user("One?"),
        assistant("msg_1", "1"),
        user("Two?"),
        assistant("msg_2", "2"),
        user("Three?"),
    ]
    assert third.body["store"] is False
    assert "previous_response_id" not in third.body


async def test_item_references_are_replaced_by_the_stored_items(store: ConversationStore) -> None:
    """What the Vercel AI SDK sends: earlier assistant output as references, the tool's result in full."""
    await turn(
        store,
        {"model": "fast", "input": "Weather in Oslo?"},
        answer("resp_1", assistant("msg_1", "Let me check."), function_call("fc_1", "call_1")),
    )
    output = {"type": "function_call_output", "call_id": "call_1", "output": "12C"}
    resolved = await resolve(
        {
            "model": "fast",
            "input": [
                user("Weather in Oslo?"),
                {"type": "item_reference", "id": "msg_1"},
                {"id": "fc_1"},  # ``type`` may be left out of a reference
                output,
            ],
        },
        OWNER,
        store,
    )
    assert resolved.body["input"] == [
        user("Weather in Oslo?"),
        assistant("msg_1", "Let me check."),
        function_call("fc_1", "call_1"),
        output,
    ]
    assert resolved.input_items == resolved.body["input"]


async def test_a_reference_to_an_earlier_input_item_of_the_previous_conversation_resolves(
    store: ConversationStore,
) -> None:
    said = {**user("Remember 42."), "id": "msg_in_1"}
    await turn(store, {"model": "fast", "input": [said]}, answer("resp_1", assistant("msg_1", "OK")))
    resolved = await resolve(
        {"model": "fast", "previous_response_id": "resp_1", "input": [{"type": "item_reference", "id": "msg_in_1"}]},
        OWNER,
        store,
    )
    assert resolved.body["input"] == [said, assistant("msg_1", "OK"), said]


async def test_reasoning_goes_upstream_only_with_its_encrypted_content(store: ConversationStore) -> None:
    """With ``store: false`` the upstream cannot look a reasoning item up by id (OpenAI answers 404)."""
    await turn(
        store,
        {"model": "fast", "input": "Think"},
        answer("resp_1", reasoning("rs_1"), reasoning("rs_2", "gAAAA-sealed"), assistant("msg_1", "Done")),
    )
    continued = await resolve({"model": "fast", "input": "More", "previous_response_id": "resp_1"}, OWNER, store)
    assert continued.body["input"] == [
        user("Think"),
        reasoning("rs_2", "gAAAA-sealed"),
        assistant("msg_1", "Done"),
        user("More"),
    ]
    referenced = await resolve(
        {
            "model": "fast",
            "input": [{"type": "item_reference", "id": "rs_1"}, {"type": "item_reference", "id": "rs_2"}],
        },
        OWNER,
        store,
    )
    assert referenced.body["input"] == [reasoning("rs_2", "gAAAA-sealed")]


async def test_an_unknown_previous_response_is_refused_as_openai_does(store: ConversationStore) -> None:
    with pytest.raises(GatewayError) as refused:
        await resolve({"model": "fast", "input": "Hi", "previous_response_id": "resp_nope"}, OWNER, store)
    assert refused.value.status == 400
    assert refused.value.payload() == {
        "error": {
            "message": "Previous response with id 'resp_nope' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
    }


async def test_an_unknown_item_reference_is_refused_naming_it(store: ConversationStore) -> None:
    await turn(store, {"model": "fast", "input": "Hi"}, answer("resp_1", assistant("msg_1", "Hello")))
    with pytest.raises(GatewayError) as refused:
        await resolve(
            {
                "model": "fast",
                "input": [{"type": "item_reference", "id": "msg_1"}, {"type": "item_reference", "id": "msg_x"}],
            },
            OWNER,
            store,
        )
    assert refused.value.status == 400
    assert refused.value.param == "input"
    assert refused.value.message == "Item with id 'msg_x' not found."


async def test_another_owner_can_neither_continue_nor_reference_a_conversation(store: ConversationStore) -> None:
    await turn(store, {"model": "fast", "input": "Secret plan"}, answer("resp_1", assistant("msg_1", "Noted")))
    with pytest.raises(GatewayError) as continued:
        await resolve({"model": "fast", "input": "And?", "previous_response_id": "resp_1"}, OTHER_OWNER, store)
    assert continued.value.code == "previous_response_not_found"
    with pytest.raises(GatewayError) as referenced:
        await resolve({"model": "fast", "input": [{"type": "item_reference", "id": "msg_1"}]}, OTHER_OWNER, store)
    assert referenced.value.message == "Item with id 'msg_1' not found."


async def test_store_false_is_answered_but_not_remembered(store: ConversationStore) -> None:
    resolved = await resolve({"model": "fast", "input": "Hi", "store": False}, OWNER, store)
    assert not resolved.remember
    assert resolved.body["store"] is False
    assert await remember(OWNER, resolved, answer("resp_1", assistant("msg_1", "Hello")), store, TTL_S) == "skipped"
    with pytest.raises(GatewayError, match="Previous response with id 'resp_1' not found"):
        await resolve({"model": "fast", "input": "And?", "previous_response_id": "resp_1"}, OWNER, store)
    with pytest.raises(GatewayError, match="Item with id 'msg_1' not found"):
        await resolve({"model": "fast", "input": [{"type": "item_reference", "id": "msg_1"}]}, OWNER, store)


@pytest.mark.parametrize("status", ["failed", "cancelled", "in_progress"])
async def test_an_unfinished_answer_is_not_remembered(store: ConversationStore, status: str) -> None:
    resolved = await resolve({"model": "fast", "input": "Hi"}, OWNER, store)
    assert await remember(OWNER, resolved, answer("resp_1", status=status), store, TTL_S) == "skipped"
    with pytest.raises(GatewayError, match="not found"):
        await resolve({"model": "fast", "input": "And?", "previous_response_id": "resp_1"}, OWNER, store)


async def test_an_answer_cut_by_max_output_tokens_can_be_continued(store: ConversationStore) -> None:
    cut = answer("resp_1", assistant("msg_1", "Once upon"), status="incomplete")
    await turn(store, {"model": "fast", "input": "A story"}, cut)
    resolved = await resolve({"model": "fast", "input": "Go on", "previous_response_id": "resp_1"}, OWNER, store)
    assert resolved.body["input"] == [user("A story"), assistant("msg_1", "Once upon"), user("Go on")]


async def test_a_conversation_over_the_byte_limit_is_answered_not_kept(
    store: ConversationStore, caplog: pytest.LogCaptureFixture
) -> None:
    resolved = await resolve({"model": "fast", "input": "x" * 2000}, OWNER, store)
    outcome = await remember(OWNER, resolved, answer("resp_1", assistant("msg_1", "y")), store, TTL_S, max_bytes=1000)
    assert outcome == "too_large"
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "resp_1 not stored" in warnings[0]
    assert "xxx" not in caplog.text  # never the conversation's text
    with pytest.raises(GatewayError, match="not found"):
        await resolve({"model": "fast", "input": "And?", "previous_response_id": "resp_1"}, OWNER, store)


async def test_without_a_store_a_request_naming_stored_state_is_refused() -> None:
    plain = await resolve({"model": "fast", "input": "Hi"}, OWNER, None)
    assert plain.body == {"model": "fast", "input": [user("Hi")], "store": False}
    assert not plain.remember
    assert await remember(OWNER, plain, answer("resp_1", assistant("msg_1", "Hello")), None, TTL_S) == "skipped"
    with pytest.raises(GatewayError) as continued:
        await resolve({"model": "fast", "input": "Hi", "previous_response_id": "resp_1"}, OWNER, None)
    assert (continued.value.status, continued.value.param, continued.value.code) == (
        400,
        "previous_response_id",
        "unsupported_parameter",
    )
    with pytest.raises(GatewayError) as referenced:
        await resolve({"model": "fast", "input": [{"type": "item_reference", "id": "msg_1"}]}, OWNER, None)
    assert (referenced.value.param, referenced.value.code) == ("input", "unsupported_parameter")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": 42}, "input"),
        ({"input": ["Hi"]}, "input[0]"),
        ({"input": "Hi", "previous_response_id": 7}, "previous_response_id"),
        ({"input": "Hi", "store": "yes"}, "store"),
        ({"input": [{"type": "item_reference", "id": 3}]}, "input"),
    ],
)
async def test_mistyped_fields_are_refused_naming_them(body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as refused:
        await resolve({"model": "fast", **body}, OWNER, None)
    assert (refused.value.status, refused.value.param) == (400, param)
