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


def default_base_url(provider: Provider, region: str | None) -> str:
    """The endpoint a credential without ``baseURL`` reaches; regional providers' depends on ``region``.

    Bedrock: ``bedrock-runtime.{region}``, adapters append ``/model/{id}/...``. Vertex AI: the regional
    ``{region}-aiplatform`` host (the global one for ``global``) ending at ``/v1``, adapters append
    ``/projects/{project}/locations/{region}/...``. The spec's rules make ``region`` present for both.
    """
    if provider is Provider.BEDROCK:
        return f"https://bedrock-runtime.{region}.amazonaws.com"
    if provider is Provider.VERTEX_AI:
        host = "aiplatform.googleapis.com" if region == "global" else f"{region}-aiplatform.googleapis.com"
        return f"https://{host}/v1"
    return DEFAULT_BASE_URLS[provider]
