"""OpenAI chat completions and embeddings served by Amazon Bedrock (Converse, ConverseStream, InvokeModel)."""
