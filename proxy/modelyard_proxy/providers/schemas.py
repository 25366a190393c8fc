"""The wire schemas a request can arrive in (ingress) or leave in (egress), and the pair that names a translator.

Ingress and egress are independent: the client's protocol does not decide the upstream's. Clients speak OpenAI
Chat Completions, OpenAI Responses or Anthropic Messages; a new ingress protocol adds rows, not branches.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class Schema(enum.Enum):
    """One wire schema: an API's request and answer bodies, whole and streamed."""

    OPENAI_CHAT = "openai-chat"
    OPENAI_EMBEDDINGS = "openai-embeddings"
    OPENAI_RESPONSES = "openai-responses"
    ANTHROPIC_MESSAGES = "anthropic-messages"
    GEMINI_GENERATE_CONTENT = "gemini-generate-content"
    GEMINI_EMBED_CONTENT = "gemini-embed-content"
    BEDROCK_CONVERSE = "bedrock-converse"
    BEDROCK_INVOKE = "bedrock-invoke"
    #: Vertex AI's publisher models: Gemini's ``generateContent``, or Anthropic's Messages through
    #: ``rawPredict``, by the credential's publisher.
    VERTEX_AI = "vertex-ai"
    VERTEX_AI_PREDICT = "vertex-ai-predict"


class Pair(NamedTuple):
    """The client's schema and the upstream's: the key a translator is registered and named by."""

    ingress: Schema
    egress: Schema

    @property
    def passthrough(self) -> bool:
        """Same schema both ways: the client's bytes go upstream untouched unless a vendor quirk applies."""
        return self.ingress is self.egress
