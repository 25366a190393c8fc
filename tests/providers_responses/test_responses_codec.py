"""The Responses codec: requests to Chat Completions, chat answers and chunks back to Responses."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import SecretStr, TypeAdapter

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.base import CallContext, JSONObject
from modelyard_proxy.providers.openai_responses_to_openai_chat.codec import ResponsesCodec
from modelyard_routing import Credential, Provider

CODEC = ResponsesCodec()
STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
CTX = CallContext(
    public_model="claude",
    upstream_model="claude-sonnet-4-5",
    credential=Credential(
        id="anthropic-prod", provider=Provider.ANTHROPIC, base_url="http://x", api_key=SecretStr("k")
    ),
    stream=True,
    created=1700000000,
    completion_id="resp_abc",
)
WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": True}


def chat(**fields: Any) -> JSONObject:
    return CODEC.chat_request({"model": "claude", "input": "hi", **fields}, CTX)


def refusal(**fields: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        chat(**fields)
    return caught.value


# -- requests ---------------------------------------------------------------------------------------------------


def test_a_string_input_with_instructions_is_a_system_and_a_user_message() -> None:
    assert chat(instructions="Be brief.") == {
        "model": "claude",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    }


def test_a_tool_round_trip_becomes_assistant_tool_calls_and_a_tool_message() -> None:
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "rain"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "sun"}]},
    ]
    assert chat(input=items)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
        {"role": "tool", "tool_call_id": "call_2", "content": "sun"},
    ]


def test_images_become_image_url_parts() -> None:
    content = [{"type": "input_text", "text": "what?"}, {"type": "input_image", "image_url": "data:x", "detail": "low"}]
    assert chat(input=[{"role": "user", "content": content}])["messages"][0]["content"] == [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": "data:x", "detail": "low"}},
    ]


def test_parameters_map_to_their_chat_names() -> None:
    request = chat(
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        text={"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": True}},
        reasoning={"effort": "low", "summary": "auto"},
        max_output_tokens=100,
        temperature=0.5,
        parallel_tool_calls=False,
        metadata={"modelyard_profile": "cheap"},
        store=False,
        stream=True,
    )
    assert request == {
        "model": "claude",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.5,
        "parallel_tool_calls": False,
        "max_completion_tokens": 100,
        "tools": [
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": {"type": "object"}, "strict": True},
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
        },
        "reasoning_effort": "low",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools"),
        ({"tool_choice": {"type": "file_search"}}, "tool_choice"),
        ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "input"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}, "input"),
        ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"truncation": "auto"}, "truncation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"max_tool_calls": 3}, "max_tool_calls"),
    ],
)
def test_what_chat_cannot_express_is_refused_by_name(fields: dict[str, Any], param: str) -> None:
    error = refusal(**fields)
    assert (error.status, error.code, error.param) == (400, "unsupported_parameter", param)


def test_images_outside_user_messages_are_refused() -> None:
    content = [{"type": "input_image", "image_url": "data:x"}]
    error = refusal(input=[{"type": "function_call_output", "call_id": "c", "output": content}])
    assert (error.status, error.param) == (400, "input")


# -- whole answers ----------------------------------------------------------------------------------------------


def completion(message: JSONObject, finish_reason: str = "stop") -> JSONObject:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "claude-sonnet-4-5",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }


def test_an_answer_holds_reasoning_text_and_tool_calls_as_items() -> None:
    message = {
        "content": "Let me check.",
        "reasoning_content": "The user wants weather.",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
    }
    answer = Response.model_validate(orjson.loads(CODEC.answer(completion(message, "tool_calls"), CTX)))
    assert answer.id == "resp_abc"
    assert answer.status == "completed"
    assert [item.type for item in answer.output] == ["reasoning", "message", "function_call"]
    assert answer.output_text == "Let me check."
    call = answer.output[2]
    assert call.type == "function_call"
    assert (call.call_id, call.name, call.arguments) == ("call_1", "get_weather", "{}")
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.total_tokens) == (10, 5, 15)
    assert answer.usage.output_tokens_details.reasoning_tokens == 2
    assert answer.usage.input_tokens_details.cached_tokens == 0


@pytest.mark.parametrize(("finish", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")])
def test_a_cut_answer_is_incomplete_with_its_reason(finish: str, reason: str) -> None:
    answer = orjson.loads(CODEC.answer(completion({"content": "partial"}, finish), CTX))
    assert answer["status"] == "incomplete"
    assert answer["incomplete_details"] == {"reason": reason}


# -- streams ----------------------------------------------------------------------------------------------------


def chunk(delta: JSONObject | None = None, finish: str | None = None, usage: JSONObject | None = None) -> JSONObject:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"object": "chat.completion.chunk", "model": "claude-sonnet-4-5", "choices": choices, "usage": usage}


def run(chunks: list[JSONObject]) -> list[JSONObject]:
    converter = CODEC.stream(CTX)
    frames = b"".join(converter.feed(c) for c in chunks) + converter.finish()
    events = []
    for block in frames.split(b"\n\n")[:-1]:
        name, data = block.split(b"\n")
        payload = orjson.loads(data.removeprefix(b"data: "))
        assert name == b"event: " + payload["type"].encode()
        STREAM_EVENT.validate_python(payload)  # every field the SDK's types require, of the right type
        events.append(payload)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def sdk_final(events: list[JSONObject]) -> Response:
    """What the openai SDK's ``responses.stream`` accumulates from the events (it refuses inconsistent ones)."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for payload in events:
        state.handle_event(STREAM_EVENT.validate_python(payload))
    assert state._completed_response is not None
    return state._completed_response


USAGE = {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}


def test_a_text_stream_is_the_typed_event_sequence_the_sdk_accumulates() -> None:
    events = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            chunk(usage=USAGE),
        ]
    )
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = sdk_final(events)
    assert final.output_text == "Hello"
    assert final.status == "completed"
    assert final.usage is not None
    assert final.usage.total_tokens == 10


def test_reasoning_text_and_parallel_tool_calls_stream_as_consistent_items() -> None:
    events = run(
        [
            chunk({"reasoning_content": "think"}),
            chunk({"content": "On it."}),
            chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "get_weather", "arguments": ""}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            chunk({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "get_time", "arguments": "{}"}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
            chunk({}, "tool_calls"),
            chunk(usage=USAGE),
        ]
    )
    final = sdk_final(events)
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call", "function_call"]
    first, second = final.output[2], final.output[3]
    assert first.type == second.type == "function_call"
    assert (first.call_id, first.name, first.arguments) == ("call_1", "get_weather", '{"city":"Oslo"}')
    assert (second.call_id, second.name, second.arguments) == ("call_2", "get_time", "{}")
    reasoning = final.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.content is not None
    assert reasoning.content[0].text == "think"
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [e["arguments"] for e in done] == ['{"city":"Oslo"}', "{}"]


def test_a_length_cut_stream_ends_incomplete() -> None:
    events = run([chunk({"content": "partial"}), chunk({}, "length"), chunk(usage=USAGE)])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "partial"


def test_an_empty_answer_still_completes() -> None:
    final = sdk_final(run([chunk({}, "stop")]))
    assert final.output == []
    assert final.status == "completed"


# -- provider state carried across turns --------------------------------------------------------------------------

BLOCK = {"type": "thinking", "thinking": "weather needs a tool", "signature": "sig-1"}
SIGNED_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": "{}"},
    "extra_content": {"google": {"thought_signature": "c2ln"}},
}


def replayed(output: list[Any]) -> list[JSONObject]:
    """The chat messages for a follow-up that sends ``output`` back, as the SDKs' clients do."""
    items = [{"role": "user", "content": "weather?"}, *output]
    items.append({"type": "function_call_output", "call_id": "call_1", "output": "21"})
    messages: list[JSONObject] = chat(input=items)["messages"]
    return messages


def test_a_whole_answers_provider_state_comes_back_on_the_next_turn() -> None:
    message = {
        "content": None,
        "reasoning_content": BLOCK["thinking"],
        "extra_content": {"anthropic": {"thinking_blocks": [BLOCK]}},
        "tool_calls": [SIGNED_CALL],
    }
    answer = orjson.loads(CODEC.answer(completion(message, "tool_calls"), CTX))
    reasoning = answer["output"][0]
    assert reasoning["type"] == "reasoning"
    assert reasoning["encrypted_content"].startswith("modelyard.v1:")
    assistant = replayed(answer["output"])[1]
    assert assistant["extra_content"] == {"anthropic": {"thinking_blocks": [BLOCK]}}
    assert assistant["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "c2ln"}}


def test_a_streamed_answers_provider_state_comes_back_on_the_next_turn() -> None:
    call_delta = {k: v for k, v in SIGNED_CALL.items() if k != "type"} | {"index": 0}
    events = run(
        [
            chunk({"reasoning_content": BLOCK["thinking"]}),
            chunk({"extra_content": {"anthropic": {"thinking_blocks": [{"index": 0, **BLOCK}]}}}),
            chunk({"content": "Checking."}),
            chunk({"tool_calls": [call_delta]}),
            chunk({}, "tool_calls"),
        ]
    )
    final = sdk_final(events)
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call", "reasoning"]
    assistant = replayed([item.model_dump(exclude_none=True) for item in final.output])[1]
    assert assistant["content"] == "Checking."
    assert assistant["extra_content"] == {"anthropic": {"thinking_blocks": [BLOCK]}}
    assert assistant["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "c2ln"}}


def test_reasoning_from_another_upstream_is_dropped() -> None:
    foreign = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAB-openai-opaque"}
    call = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"}
    assistant = replayed([foreign, call])[1]
    assert "extra_content" not in assistant
    assert "extra_content" not in assistant["tool_calls"][0]
