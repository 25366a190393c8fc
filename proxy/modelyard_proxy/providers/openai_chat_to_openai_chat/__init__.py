"""OpenAI chat and embeddings to the OpenAI family: passthrough, plus vendor quirks and Azure addressing."""
