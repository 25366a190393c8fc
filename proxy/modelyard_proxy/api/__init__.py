"""The HTTP surface clients call: the aiohttp app, its handlers and middleware (auth, bounds, error rendering)."""
