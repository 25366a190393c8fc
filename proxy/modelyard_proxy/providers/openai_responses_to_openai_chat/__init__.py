"""OpenAI Responses to Chat Completions and back: any provider serves ``/v1/responses`` through its chat adapter."""
