"""``chat.completion.chunk`` objects as the typed Responses stream events, numbered in order.

The openai SDKs rebuild the response from the events (``ResponseStream``) and refuse an inconsistent
sequence, so every item is announced (``output_item.added``) before its deltas and closed
(``output_item.done``) before ``response.completed``, whose output lists the same items with the same ids.
An item closes when the chat stream moves on to another kind (reasoning, then text, then tool calls).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from modelyard_proxy.providers.base import CallContext, JSONObject
from modelyard_proxy.providers.ingress.chain import ChunkConverter
from modelyard_proxy.providers.openai_responses_to_openai_chat import response as items
from modelyard_proxy.providers.openai_responses_to_openai_chat.carry import Carried


@dataclasses.dataclass(slots=True)
class _Open:
    """One output item being streamed: where it sits and what it has gathered."""

    index: int
    item: JSONObject
    #: The text of each content part (message) or the arguments (function call), in order.
    texts: list[str] = dataclasses.field(default_factory=list)


class ResponsesEvents(ChunkConverter):
    """One streamed answer's events: ``response.created`` first, ``response.completed`` (or ``incomplete``) last."""

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._ids = items.ItemIds(ctx)
        self._sequence = 0
        self._response: JSONObject | None = None
        self._output: list[JSONObject] = []
        self._open: _Open | None = None
        #: Tool calls by their chat index, open until the stream moves past them.
        self._calls: dict[int, _Open] = {}
        self._finish_reason: Any = None
        self._usage: Any = None
        #: Provider state for the next turn not yet put on a reasoning item (see :mod:`.carry`).
        self._carried = Carried()

    def feed(self, chunk: JSONObject) -> bytes:
        out = self._start(chunk)
        if isinstance(usage := chunk.get("usage"), dict):
            self._usage = usage
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                out += self._delta(delta)
            if choice.get("finish_reason") is not None:
                self._finish_reason = choice["finish_reason"]
        return out

    def finish(self) -> bytes:
        out = self._start({}) + self._close_all()
        if self._carried:  # state that came after the reasoning (a tool call's signature): an item of its own
            carrier, added = self._add(items.reasoning_item(self._ids.next("rs"), ""))
            carrier.texts.append("")
            out += added + self._close(carrier)
        assert self._response is not None
        response = items.finished(self._response, self._finish_reason, self._output, self._usage)
        self.answer = response
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return out + self._event(kind, response=response)

    # -- the stream's parts -------------------------------------------------------------------------------

    def _start(self, chunk: JSONObject) -> bytes:
        if self._response is not None:
            return b""
        model = chunk.get("model")
        self._response = items.envelope(self._ctx, model if isinstance(model, str) else None, "in_progress")
        return self._event("response.created", response=self._response) + self._event(
            "response.in_progress", response=self._response
        )

    def _delta(self, delta: JSONObject) -> bytes:
        out = b""
        if isinstance(thoughts := delta.get("reasoning_content"), str) and thoughts:
            out += self._reasoning(thoughts)
        if isinstance(text := delta.get("content"), str) and text:
            out += self._text("output_text", text)
        if isinstance(refusal := delta.get("refusal"), str) and refusal:
            out += self._text("refusal", refusal)
        self._carried.add_message_delta(delta.get("extra_content"))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                out += self._call(call)
        return out

    def _reasoning(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open.item["type"] != "reasoning":
            out += self._close_all()
            self._open, added = self._add(items.reasoning_item(self._ids.next("rs"), ""))
            self._open.texts.append("")
            out += added
        self._open.texts[0] += text
        return out + self._event(
            "response.reasoning_text.delta", **self._where(self._open), content_index=0, delta=text
        )

    def _text(self, kind: str, text: str) -> bytes:
        """A text or refusal delta: the message item and the part of that kind open first, if they are not."""
        out = b""
        if self._open is None or self._open.item["type"] != "message":
            out += self._close_all()
            self._open, added = self._add(items.message_item(self._ids.next("msg"), [], "in_progress"))
            out += added
        current = self._open
        parts: list[JSONObject] = current.item["content"]
        if not parts or parts[-1]["type"] != kind:
            part = items.text_part("") if kind == "output_text" else items.refusal_part("")
            parts.append(part)
            current.texts.append("")
            out += self._event(
                "response.content_part.added", **self._where(current), content_index=len(parts) - 1, part=part
            )
        current.texts[-1] += text
        fields: JSONObject = {"logprobs": []} if kind == "output_text" else {}
        name = "response.output_text.delta" if kind == "output_text" else "response.refusal.delta"
        return out + self._event(name, **self._where(current), content_index=len(parts) - 1, delta=text, **fields)

    def _call(self, call: JSONObject) -> bytes:
        out = b""
        index = call.get("index", 0)
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        assert isinstance(function, dict)
        current = self._calls.get(index)
        if current is None:
            if self._open is not None:
                out += self._close(self._open)
                self._open = None
            item = items.call_item(
                self._ids.next("fc"),
                str(call.get("id") or ""),
                str(function.get("name") or ""),
                "",
                "in_progress",
            )
            current, added = self._add(item)
            self._calls[index] = current
            current.texts.append("")
            out += added
        self._carried.add_call(current.item["call_id"], call.get("extra_content"))
        if isinstance(arguments := function.get("arguments"), str) and arguments:
            current.texts[0] += arguments
            out += self._event("response.function_call_arguments.delta", **self._where(current), delta=arguments)
        return out

    def _take_carried(self) -> str | None:
        """The state gathered so far, encoded for the reasoning item being closed (then gathered afresh)."""
        if not self._carried:
            return None
        carried, self._carried = self._carried, Carried()
        return carried.encode()

    def _add(self, item: JSONObject) -> tuple[_Open, bytes]:
        """``item`` opened at the next output index, and its announcement."""
        opened = _Open(len(self._output), item)
        self._output.append(item)
        return opened, self._event("response.output_item.added", output_index=opened.index, item=item)

    def _close_all(self) -> bytes:
        out = b""
        if self._open is not None:
            out += self._close(self._open)
            self._open = None
        for call in self._calls.values():
            out += self._close(call)
        self._calls = {}
        return out

    def _close(self, current: _Open) -> bytes:
        """The closing events of one item, and its final form in the output."""
        item = current.item
        out = b""
        if item["type"] == "reasoning":
            text = current.texts[0]
            if text:
                out += self._event("response.reasoning_text.done", **self._where(current), content_index=0, text=text)
            final = items.reasoning_item(item["id"], text, self._take_carried())
        elif item["type"] == "message":
            parts = []
            for number, (part, text) in enumerate(zip(item["content"], current.texts, strict=True)):
                done = items.text_part(text) if part["type"] == "output_text" else items.refusal_part(text)
                if part["type"] == "output_text":
                    out += self._event(
                        "response.output_text.done", **self._where(current), content_index=number, text=text,
                        logprobs=[],
                    )  # fmt: skip
                else:
                    out += self._event(
                        "response.refusal.done", **self._where(current), content_index=number, refusal=text
                    )
                out += self._event(
                    "response.content_part.done", **self._where(current), content_index=number, part=done
                )
                parts.append(done)
            final = items.message_item(item["id"], parts)
        else:
            arguments = current.texts[0]
            out += self._event(
                "response.function_call_arguments.done", **self._where(current), name=item["name"], arguments=arguments
            )
            final = items.call_item(item["id"], item["call_id"], item["name"], arguments)
        self._output[current.index] = final
        return out + self._event("response.output_item.done", output_index=current.index, item=final)

    @staticmethod
    def _where(current: _Open) -> JSONObject:
        return {"item_id": current.item["id"], "output_index": current.index}

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
