"""The proxy's base: the error shape, SSE framing and process settings, which import nothing of the application."""
