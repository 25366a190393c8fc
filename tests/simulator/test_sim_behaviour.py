"""Unit tests: directive parsing, behaviour precedence, scenario books, tokens and answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard_simulator import Behaviour, ScenarioBook, ToolCall, parse_directives
from modelyard_simulator.answer import Prompt, compose
from modelyard_simulator.behaviour import OverrideError, field_name, header_overrides, resolve
from modelyard_simulator.schema_sample import sample_json
from modelyard_simulator.tokens import count_prompt_tokens, count_tokens, tokenize


def test_directive_is_parsed_and_removed_from_text() -> None:
    text, overrides = parse_directives("[simulate status=503 retry-after=1] Hello there")
    assert text == "Hello there"
    assert overrides == {"status": "503", "retry-after": "1"}


def test_directive_supports_quotes_flags_and_several_occurrences() -> None:
    text, overrides = parse_directives(
        'before [SIMULATE reply="two words \\"quoted\\"" malformed] middle [simulate status=429 reply=\'x y\'] end'
    )
    assert text == "before  middle  end"
    assert overrides == {"reply": "x y", "malformed": "true", "status": "429"}


def test_text_without_directive_is_untouched() -> None:
    assert parse_directives("  [not a directive] plain ") == ("[not a directive] plain", {})


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("retry-after", "retry_after"),
        ("retryAfter", "retry_after"),
        ("retry_after", "retry_after"),
        ("ttftMs", "ttft_ms"),
    ],
)
def test_field_names_accept_kebab_camel_and_snake(key: str, name: str) -> None:
    assert field_name(key) == name


def test_header_overrides_only_take_simulator_headers() -> None:
    headers = {"X-Simulator-Status": "429", "x-simulator-cut-after-chunks": "2", "Authorization": "Bearer k"}
    assert header_overrides(headers) == {"status": "429", "cut-after-chunks": "2"}


BOOK = ScenarioBook(
    default=Behaviour(status=500, latency_ms=7),
    models={"gpt-*": Behaviour(status=502), "gpt-exact": Behaviour(status=418)},
)


@pytest.mark.parametrize(
    ("model", "text", "headers", "status"),
    [
        ("other", "hi", {}, 500),
        ("gpt-4o", "hi", {}, 502),
        ("gpt-exact", "hi", {}, 418),
        ("gpt-4o", "[simulate status=503] hi", {}, 503),
        ("gpt-4o", "[simulate status=503] hi", {"x-simulator-status": "504"}, 504),
        ("other", "hi", {"x-simulator-status": "200"}, 200),
    ],
)
def test_precedence_is_header_then_directive_then_model_then_default(
    model: str, text: str, headers: dict[str, str], status: int
) -> None:
    assert resolve(BOOK, model, text, headers).status == status


def test_model_entry_only_overrides_fields_it_sets() -> None:
    behaviour = resolve(BOOK, "gpt-4o", "hi", {})
    assert behaviour.latency_ms == 7


def test_overrides_are_validated() -> None:
    with pytest.raises(OverrideError, match="unknown behaviour field"):
        Behaviour().overlay({"no-such-thing": "1"})
    with pytest.raises(OverrideError, match="status"):
        Behaviour().overlay({"status": "abc"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
            ToolCall(name="get_weather", arguments={"city": "Oslo"}),
        ),
        ("lookup", ToolCall(name="lookup")),
    ],
)
def test_tool_call_override_accepts_json_or_a_bare_name(raw: str, expected: ToolCall) -> None:
    assert Behaviour().overlay({"tool-call": raw}).tool_call == expected


def test_scenario_book_loads_yaml_with_camel_case(tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text(
        "default:\n  latencyMs: 5\nmodels:\n  claude-*:\n    status: 529\n    retryAfter: 2\n"
        "  gpt-tools:\n    toolCall: {name: lookup, arguments: {q: x}}\nrecordLimit: 3\n"
    )
    book = ScenarioBook.load(path)
    assert book.record_limit == 3
    assert book.behaviour_for("claude-3").status == 529
    assert book.behaviour_for("claude-3").retry_after == 2
    assert book.behaviour_for("claude-3").latency_ms == 5
    assert book.behaviour_for("gpt-tools").tool_call == ToolCall(name="lookup", arguments={"q": "x"})
    assert book.model_ids() == ["gpt-tools"]


def test_empty_yaml_is_the_default_book(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert ScenarioBook.load(path) == ScenarioBook()


@given(st.text())
def test_tokens_concatenate_back_to_the_text(text: str) -> None:
    tokens = tokenize(text)
    assert "".join(tokens) == text
    assert count_tokens(text) == len(tokens)


def test_prompt_tokens_skip_protocol_structure() -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "one two"}]},
        {"role": "tool", "content": "three"},
    ]
    assert count_prompt_tokens([messages]) == 3


def _prompt(**kwargs: object) -> Prompt:
    base: dict[str, object] = {"model": "m", "user_text": "[simulate malformed] tell me a story", "prompt_tokens": 4}
    return Prompt(**{**base, **kwargs})  # type: ignore[arg-type]


def test_default_answer_echoes_the_user_text_without_directive() -> None:
    answer = compose(_prompt(), Behaviour())
    assert answer.text == "echo: tell me a story"
    assert answer.finish == "end"
    assert answer.output_tokens == len(answer.text_tokens) == 5


def test_stop_sequence_and_max_tokens_truncate() -> None:
    stopped = compose(_prompt(stop=("story", "me")), Behaviour())
    assert (stopped.text, stopped.finish, stopped.stop_sequence) == ("echo: tell ", "stop_sequence", "me")
    limited = compose(_prompt(max_tokens=2), Behaviour())
    assert (limited.text, limited.finish, limited.output_tokens) == ("echo: tell", "length", 2)


def test_tool_call_only_when_tools_are_declared_and_not_after_a_result() -> None:
    behaviour = Behaviour(tool_call=ToolCall(name="f", arguments={"a": 1}))
    assert compose(_prompt(), behaviour).tool is None
    call = compose(_prompt(tools=("f",)), behaviour)
    assert call.finish == "tool"
    assert call.tool is not None
    assert orjson.loads(call.tool.arguments) == {"a": 1}
    assert compose(_prompt(tools=("f",), after_tool_result=True), behaviour).tool is None


def test_json_mode_answers_an_instance_of_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "count": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "STRING"}},
            "kind": {"enum": ["a", "b"]},
            "maybe": {"type": ["null", "boolean"]},
        },
    }
    answer = compose(_prompt(json_mode=True, json_schema=schema), Behaviour())
    assert answer.text is not None
    assert orjson.loads(answer.text) == {
        "title": "tell me a story",
        "count": 1,
        "tags": ["tell me a story"],
        "kind": "a",
        "maybe": True,
    }
    assert sample_json({"anyOf": [{"type": "number"}]}, "x") == 1.0
    plain = compose(_prompt(json_mode=True), Behaviour())
    assert plain.text is not None
    assert orjson.loads(plain.text) == {"echo": "tell me a story"}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (  # pydantic's nested model, optional and in a list
            {
                "$defs": {"A": {"type": "object", "properties": {"city": {"type": "string"}}}},
                "type": "object",
                "properties": {
                    "home": {"$ref": "#/$defs/A"},
                    "work": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/A"}]},
                    "past": {"type": "array", "items": {"$ref": "#/$defs/A"}},
                },
            },
            {"home": {"city": "x"}, "work": {"city": "x"}, "past": [{"city": "x"}]},
        ),
        (  # draft-04 definitions, a described reference wrapped in allOf, an escaped pointer
            {
                "definitions": {"a/b": {"properties": {"n": {"type": "integer"}}}},
                "properties": {"v": {"allOf": [{"$ref": "#/definitions/a~1b"}], "description": "d"}},
            },
            {"v": {"n": 1}},
        ),
        (
            {"properties": {"r": {"$ref": "https://example.com/s.json"}, "d": {"$ref": "#/$defs/gone"}}},
            {"r": None, "d": None},
        ),
    ],
)
def test_structured_answers_follow_references(schema: dict[str, Any], expected: Any) -> None:
    assert sample_json(schema, "x") == expected


def test_recursive_schemas_end() -> None:
    node = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
    }
    tree = sample_json(node, "x")
    depth = 0
    while tree["children"]:
        (tree,) = tree["children"]
        depth += 1
    assert tree["name"] == "x"
    assert depth > 3
