"""OpenAI Chat Completions to Gemini ``generateContent`` and back: requests, answers, streams, errors."""
