"""What a JSON body will cost once parsed, bounded before (values) and right after (depth) it is parsed.

Parsed JSON costs memory per value, not per byte: 28 MB of short messages become half a gigabyte of
dicts and strings. The value bound reads the raw bytes with C-speed scans only, and only for a body large
enough to break it (every value takes two bytes). Its structural characters over-count (strings may hold
them); only a body above the bound is counted exactly, with its strings removed, and a body with more
strings than the bound allows is refused without even that. Nesting costs no memory to speak of (the parser
stops at 1024 levels) but recursion in translation, so depth is checked on the parsed body, and only when
the body holds more arrays and objects than the depth allowed.
"""

from __future__ import annotations

import re
from typing import Any

from modelyard_proxy.base.errors import GatewayError

#: A JSON string, escapes included (the unrolled form runs in one tight loop per string).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def check_values(raw: bytes, limit: int) -> None:
    """413 when ``raw`` holds more than ``limit`` JSON values; malformed JSON passes, for the parser to name
    its fault."""
    if len(raw) <= 2 * limit or _values(raw) <= limit:
        return
    # The strings are a lower bound on twice the values (each value carries at most one key).
    strings = (raw.count(b'"') - raw.count(b'\\"')) // 2
    if strings > 2 * limit or _values(_STRING.sub(b"", raw)) > limit:
        raise GatewayError(
            413,
            f"request body holds more than {limit} JSON values (arrays, objects, strings, numbers)",
            code="request_too_large",
        )


def check_depth(raw: bytes, body: Any, limit: int) -> None:
    """400 when ``body`` (parsed from ``raw``) nests arrays and objects deeper than ``limit`` levels."""
    if raw.count(b"[") + raw.count(b"{") > limit and _deeper(body, limit):
        raise GatewayError(
            400, f"request body nests arrays and objects deeper than {limit} levels", code="nesting_too_deep"
        )


def _values(raw: bytes) -> int:
    """Every value but the outermost follows ``[``, ``{`` (as a member) or ``,``: exact for JSON without
    strings, one too many per empty array or object."""
    return 1 + raw.count(b",") + raw.count(b"[") + raw.count(b"{")


def _deeper(value: Any, budget: int) -> bool:
    """Whether the array or object ``value`` nests more than ``budget`` levels (recursion bounded by it)."""
    if budget == 0:
        return True
    for child in value.values() if type(value) is dict else value:
        kind = type(child)
        if (kind is dict or kind is list) and _deeper(child, budget - 1):
            return True
    return False
