"""The ``modelyard`` command: one entry point for the proxy, the simulator, the compiler and the operator."""
