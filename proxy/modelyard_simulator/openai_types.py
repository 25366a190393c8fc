"""The JSON types OpenAI requires of top-level request fields, refused in OpenAI's own words.

The real API answers a field of the wrong type with a 400 ``invalid_type`` before it reads the request, so
a client (or a gateway passing the client's body through) sees the same refusal here, never a crash.
"""

from __future__ import annotations

from modelyard_simulator.engine import JsonObject
from modelyard_simulator.errors import Failure

_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a decimal",
    str: "a string",
    list: "an array",
    dict: "an object",
}
_NUMBER = ("a number", (int, float))
_INTEGER = ("an integer", (int,))
_BOOLEAN = ("a boolean", (bool,))
_STRING = ("a string", (str,))
_ARRAY = ("an array", (list,))
_OBJECT = ("an object", (dict,))

Expected = tuple[str, tuple[type, ...]]

CHAT_FIELDS: dict[str, Expected] = {
    "messages": _ARRAY,
    "stream": _BOOLEAN,
    "stream_options": _OBJECT,
    "max_tokens": _INTEGER,
    "max_completion_tokens": _INTEGER,
    "n": _INTEGER,
    "seed": _INTEGER,
    "temperature": _NUMBER,
    "top_p": _NUMBER,
    "presence_penalty": _NUMBER,
    "frequency_penalty": _NUMBER,
    "stop": ("one of a string or array of strings", (str, list)),
    "logprobs": _BOOLEAN,
    "top_logprobs": _INTEGER,
    "logit_bias": _OBJECT,
    "tools": _ARRAY,
    "tool_choice": ("one of a string or object", (str, dict)),
    "parallel_tool_calls": _BOOLEAN,
    "response_format": _OBJECT,
    "reasoning_effort": _STRING,
    "modalities": _ARRAY,
    "metadata": _OBJECT,
    "store": _BOOLEAN,
    "user": _STRING,
}
RESPONSES_FIELDS: dict[str, Expected] = {
    "input": ("one of a string or array of input items", (str, list)),
    "instructions": _STRING,
    "stream": _BOOLEAN,
    "stream_options": _OBJECT,
    "max_output_tokens": _INTEGER,
    "max_tool_calls": _INTEGER,
    "temperature": _NUMBER,
    "top_p": _NUMBER,
    "top_logprobs": _INTEGER,
    "tools": _ARRAY,
    "tool_choice": ("one of a string or object", (str, dict)),
    "parallel_tool_calls": _BOOLEAN,
    "text": _OBJECT,
    "reasoning": _OBJECT,
    "include": _ARRAY,
    "metadata": _OBJECT,
    "store": _BOOLEAN,
    "background": _BOOLEAN,
    "previous_response_id": _STRING,
    "truncation": _STRING,
    "service_tier": _STRING,
    "user": _STRING,
    "safety_identifier": _STRING,
    "prompt_cache_key": _STRING,
}
EMBEDDING_FIELDS: dict[str, Expected] = {
    "encoding_format": _STRING,
    "dimensions": _INTEGER,
    "user": _STRING,
}


def check_types(body: JsonObject, fields: dict[str, Expected]) -> None:
    """Refuse the first field whose value is neither null nor of its expected JSON type."""
    for name, (wording, kinds) in fields.items():
        value = body.get(name)
        if value is None:
            continue
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            got = _NAMES.get(type(value), "an unknown type")
            raise Failure(
                400,
                f"Invalid type for '{name}': expected {wording}, but got {got} instead.",
                param=name,
                code="invalid_type",
            )
