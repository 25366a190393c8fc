"""OpenAI Chat Completions to Anthropic Messages and back: requests, answers, streams, thinking, JSON mode."""
