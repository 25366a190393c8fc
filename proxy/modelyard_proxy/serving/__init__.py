"""The process model: the server, worker processes, their supervisor, and fan-out of pushes and metrics."""
