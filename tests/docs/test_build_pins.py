"""The build backend is pinned once for both installs: `make install` (pyproject's uv build constraints) and the
image (tools/build-requirements.txt, with hashes). The two lists must name the same versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_install_and_the_image_build_with_the_same_backend() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    constraints = set(pyproject["tool"]["uv"]["build-constraint-dependencies"])
    hashed = (ROOT / "tools" / "build-requirements.txt").read_text()
    pins = {f"{name}=={version}" for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", hashed, re.M)}
    assert pins, "tools/build-requirements.txt pins nothing"
    assert constraints == pins
