"""Deterministic embeddings: the same text always maps to the same unit vector."""

from __future__ import annotations

import base64
import hashlib
import math
import struct


def embed(text: str, dimensions: int) -> list[float]:
    """A unit-length vector derived from sha256 of ``text``, so equality tests are meaningful."""
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        values.extend((word / 0xFFFFFFFF) * 2 - 1 for (word,) in struct.iter_unpack("<I", digest))
        block += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def to_base64(values: list[float]) -> str:
    """OpenAI's ``encoding_format: base64``: little-endian float32, base64 encoded."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
