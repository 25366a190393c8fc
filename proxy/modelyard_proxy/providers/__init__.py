"""One adapter per upstream wire dialect, each translating OpenAI requests and responses both ways."""
