"""The HTTP surfaces: the public API (app, handlers, middleware: auth, bounds, error rendering) and the admin port."""
