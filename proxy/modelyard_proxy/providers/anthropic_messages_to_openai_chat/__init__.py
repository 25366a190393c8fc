"""Anthropic Messages clients served through any provider's Chat Completions adapter: the codec both ways."""
