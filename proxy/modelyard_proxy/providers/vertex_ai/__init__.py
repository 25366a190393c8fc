"""Google Vertex AI: Gemini and Claude served from one Google Cloud project, each in its publisher's framing."""
