"""The data plane: an aiohttp proxy serving the OpenAI API in front of every configured provider."""
