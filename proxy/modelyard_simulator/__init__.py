"""Provider simulator: OpenAI, Azure OpenAI, Anthropic and Gemini wire formats with scripted behaviour.

Used by the test suite, the ``make run`` demo and ``modelyard simulate`` for rehearsing outages.
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
