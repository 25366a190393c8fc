"""Deterministic token approximation shared by usage accounting and stream chunking.

A "token" is a run of up to eight non-space characters with its leading whitespace, so
``"".join(tokenize(t)) == t`` and the number of streamed content chunks always equals the
reported completion tokens. That lets tests reason about usage and cut points exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_TOKEN = re.compile(r"\s*\S{1,8}|\s+")

# Keys whose string values are protocol structure, not text a model would read.
_STRUCTURAL_KEYS = frozenset(
    {
        "role",
        "type",
        "id",
        "tool_call_id",
        "tool_use_id",
        "call_id",
        "encrypted_content",
        "signature",
        "mimeType",
        "mime_type",
        "media_type",
        "data",
        "url",
        "image_url",
        "file_id",
        "file_data",
        "detail",
        "cache_control",
    }
)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens that concatenate back to it exactly."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Number of tokens in ``text``."""
    return len(tokenize(text))


def collect_text(node: object) -> list[str]:
    """All human-readable strings inside a JSON request fragment, in document order."""
    found: list[str] = []
    _collect(node, found)
    return found


def count_prompt_tokens(nodes: Iterable[object]) -> int:
    """Prompt tokens for the given request fragments (messages, system, tools, ...)."""
    return sum(count_tokens(text) for node in nodes for text in collect_text(node))


def _collect(node: object, found: list[str]) -> None:
    if isinstance(node, str):
        found.append(node)
    elif isinstance(node, list):
        for item in node:
            _collect(item, found)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in _STRUCTURAL_KEYS:
                _collect(value, found)
