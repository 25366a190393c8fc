"""The client protocols the gateway speaks, and how one that is not Chat Completions reaches any provider."""
