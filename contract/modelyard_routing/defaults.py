"""Where each named provider lives when a credential gives no ``baseURL``.

OpenAI-family URLs end at the API version (``/v1``) and adapters append the operation path; Anthropic ends
at ``/v1`` too, Gemini at ``/v1beta``.
"""

from modelyard_routing.specs import Provider

DEFAULT_BASE_URLS: dict[Provider, str] = {
    Provider.OPENAI: "https://api.openai.com/v1",
    Provider.ANTHROPIC: "https://api.anthropic.com/v1",
    Provider.GEMINI: "https://generativelanguage.googleapis.com/v1beta",
    Provider.MISTRAL: "https://api.mistral.ai/v1",
    Provider.DEEPSEEK: "https://api.deepseek.com/v1",
    Provider.QWEN: "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
    Provider.GROQ: "https://api.groq.com/openai/v1",
    Provider.TOGETHER: "https://api.together.xyz/v1",
}
