"""Markers of the Docker-based suites (pyproject.toml registers `e2e`)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "image: runs the container image hardened (make image-test)")
