"""A Responses API turn against the gateway's own store: what goes upstream, and what is kept afterwards.

The Responses API is stateful by default (``store`` is true unless the client says otherwise): a request may
continue a stored response (``previous_response_id``) and name earlier items instead of repeating them
(``{"type": "item_reference", "id": …}``, which the Vercel AI SDK sends for earlier assistant output). A gateway
cannot leave that state to the upstream, since a fallback to another provider would lose it, so it keeps it
here: the upstream always receives the whole conversation, with ``store: false`` (so reasoning items travel
only with their ``encrypted_content``: the upstream asked with ``include: ["reasoning.encrypted_content"]``
returns it).

Stored per owner (a digest of the gateway key): ``response:<id>`` holds the response's whole conversation (its
input items, references resolved, and its output items), ``item:<id>`` each output item.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Literal

import orjson

from modelyard_proxy.base.errors import GatewayError, bad_request
from modelyard_proxy.conversations.store import ConversationStore, ConversationStoreUnavailable

log = logging.getLogger(__name__)

#: Response statuses whose conversation can be continued: a whole answer, or one cut by ``max_output_tokens``
#: or a content filter (OpenAI keeps both). ``failed``, ``cancelled`` and unfinished ones are not kept.
FINISHED = ("completed", "incomplete")
RESPONSE_KEY = "response:"
ITEM_KEY = "item:"
DEFAULT_MAX_BYTES = 8 * 1024 * 1024

Remembered = Literal["stored", "skipped", "too_large", "failed"]


@dataclasses.dataclass(frozen=True, slots=True)
class Resolved:
    """A request made stateless: ``body`` goes upstream; ``input_items`` and ``remember`` are for ``remember``."""

    body: dict[str, Any]
    #: The whole conversation sent upstream: the stored one, then this request's input, references resolved.
    input_items: list[Any]
    #: The client did not send ``store: false`` and the gateway keeps conversations.
    remember: bool


async def resolve(body: dict[str, Any], owner: str, store: ConversationStore | None) -> Resolved:
    """The upstream body for a ``POST /v1/responses`` body: ``previous_response_id`` replaced by the stored
    conversation, each ``item_reference`` by the stored item, ``store: false``.

    Raises ``GatewayError`` in OpenAI's shape: 400 for an unknown response or item, 503
    (``ConversationStoreUnavailable``) when the store cannot be read. ``store`` None: the gateway keeps no
    conversations, and a request that names one is refused.
    """
    items = _input_items(body.get("input"))
    previous_id = body.get("previous_response_id")
    if previous_id is not None and not isinstance(previous_id, str):
        raise bad_request("Invalid type for 'previous_response_id': expected a string.", param="previous_response_id")
    keep = body.get("store", True)
    if keep is None:
        keep = True
    if not isinstance(keep, bool):
        raise bad_request("Invalid type for 'store': expected a boolean.", param="store")
    references = [reference for item in items if (reference := _reference(item)) is not None]
    if store is None:
        if previous_id:
            raise _not_kept("previous_response_id")
        if references:
            raise _not_kept("input")
    elif previous_id or references:
        items = await _expand(store, owner, previous_id, items, references)
    items = [item for item in items if not _needs_the_upstream_store(item)]
    upstream = {name: value for name, value in body.items() if name != "previous_response_id"}
    if "input" in body or previous_id:  # a body may leave ``input`` to a stored prompt (``prompt``)
        upstream["input"] = items
    upstream["store"] = False
    return Resolved(body=upstream, input_items=items, remember=keep and store is not None)


async def remember(
    owner: str,
    resolved: Resolved,
    response: dict[str, Any],
    store: ConversationStore | None,
    ttl: int,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Remembered:
    """Keep a finished answer's conversation under its response id, and each output item under its own id.

    ``response`` is the final Response object: a whole answer's body, or a stream's ``response.completed``
    (or ``response.incomplete``) event's ``response``. Never raises: the answer is already the client's, so a
    conversation too large to keep (over ``max_bytes``) or a store that fails is logged, not answered.
    """
    response_id = response.get("id")
    output = response.get("output")
    if (
        store is None
        or not resolved.remember
        or response.get("status") not in FINISHED
        or not isinstance(response_id, str)
        or not isinstance(output, list)
    ):
        return "skipped"
    conversation = orjson.dumps({"input": resolved.input_items, "output": output})
    entries = {RESPONSE_KEY + response_id: conversation}
    for item in output:
        if isinstance(item, dict) and isinstance(item_id := item.get("id"), str):
            entries[ITEM_KEY + item_id] = orjson.dumps(item)
    size = sum(len(value) for value in entries.values())
    if size > max_bytes:
        log.warning(
            "response %s not stored: its conversation is %d bytes, over MODELYARD_RESPONSES_MAX_BYTES (%d)",
            response_id,
            size,
            max_bytes,
        )
        return "too_large"
    try:
        await store.put_many(owner, entries, ttl)
    except ConversationStoreUnavailable:
        return "failed"  # the store logged why
    return "stored"


def _input_items(value: object) -> list[Any]:
    """``input`` as a list of items: a string is one user message."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        raise bad_request("Invalid type for 'input': expected a string or an array of input items.", param="input")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise bad_request(f"Invalid type for 'input[{index}]': expected an object.", param=f"input[{index}]")
    return list(value)


def _reference(item: dict[str, Any]) -> str | None:
    """The id an item refers to, when it is an ``item_reference`` (whose ``type`` may be left out)."""
    kind = item.get("type")
    if kind == "item_reference" or (kind is None and "role" not in item and "id" in item):
        reference = item.get("id")
        if not isinstance(reference, str):
            raise bad_request("Invalid type for 'input[].id': expected a string.", param="input")
        return reference
    return None


async def _expand(
    store: ConversationStore, owner: str, previous_id: str | None, items: list[Any], references: list[str]
) -> list[Any]:
    """The stored conversation, then ``items`` with their references resolved: one read of the store."""
    wanted = list(dict.fromkeys(references))
    keys = [ITEM_KEY + reference for reference in wanted]
    if previous_id:
        keys.append(RESPONSE_KEY + previous_id)
    values = await store.get_many(owner, keys)
    history: list[Any] = []
    if previous_id:
        stored = values.pop()
        if stored is None:
            raise GatewayError(
                400,
                f"Previous response with id '{previous_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        conversation = orjson.loads(stored)
        history = [*conversation["input"], *conversation["output"]]
    # An earlier input item of the conversation may be named too, not only an output item.
    found = {item["id"]: item for item in history if isinstance(item, dict) and isinstance(item.get("id"), str)}
    found.update({ref: orjson.loads(value) for ref, value in zip(wanted, values, strict=True) if value is not None})
    resolved: list[Any] = []
    for item in items:
        reference = _reference(item)
        if reference is None:
            resolved.append(item)
        elif reference in found:
            resolved.append(found[reference])
        else:
            raise bad_request(f"Item with id '{reference}' not found.", param="input")
    return [*history, *resolved]


def _needs_the_upstream_store(item: dict[str, Any]) -> bool:
    """A reasoning item without its ``encrypted_content``: the upstream can only look it up by id in its own
    store, so with ``store: false`` OpenAI answers 404 "Item with id 'rs_…' not found". Left out, the
    conversation goes on without that reasoning, as OpenAI's own SDKs do."""
    return item.get("type") == "reasoning" and not item.get("encrypted_content")


def _not_kept(param: str) -> GatewayError:
    """A request that continues a stored conversation, while the gateway keeps none."""
    what = "'previous_response_id'" if param == "previous_response_id" else "an 'item_reference' in 'input'"
    message = (
        f"{what} continues a kept conversation, and this gateway keeps none (MODELYARD_RESPONSES_STORE is off): "
        "send the whole conversation in 'input' with 'store': false"
    )
    return GatewayError(400, message, param=param, code="unsupported_parameter")
