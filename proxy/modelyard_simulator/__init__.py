"""Provider simulator: OpenAI (Chat Completions and Responses), Azure OpenAI, Anthropic, Gemini and Vertex AI wire
formats with scripted behaviour, and the Google token endpoint and metadata server Vertex AI tokens come from.

Used by the test suite, the ``make run`` demo and ``modelyard simulate`` for rehearsing outages.
Behaviour comes from a scenario book (YAML, camelCase keys, model names may be globs)::

    default: {latencyMs: 20, tokenIntervalMs: 5}
    models:
      claude-*: {status: 529, retryAfter: 2}

and per request from ``x-simulator-<field>`` headers (``x-simulator-status: 429``) or a
``[simulate status=503 retry-after=1]`` directive in the last user message, which gateways
forward. Precedence: header > directive > per-model > default.
"""

from modelyard_simulator.app import create_app, serve
from modelyard_simulator.behaviour import Behaviour, ScenarioBook, ToolCall, parse_directives
from modelyard_simulator.engine import SCENARIOS
from modelyard_simulator.log import REQUEST_LOG, RecordedRequest, RequestLog

__all__ = [
    "REQUEST_LOG",
    "SCENARIOS",
    "Behaviour",
    "RecordedRequest",
    "RequestLog",
    "ScenarioBook",
    "ToolCall",
    "create_app",
    "parse_directives",
    "serve",
]
