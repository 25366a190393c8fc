"""OpenAI Responses to OpenAI and Azure OpenAI's own Responses API: bodies and events pass through."""
