"""Anthropic Messages clients served by Anthropic: the request and answer pass through untouched."""
