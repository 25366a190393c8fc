"""Bounded steps for the Docker-based suites, and the checks that decide whether they can run at all.

Every slow step of a fixture (an image build, ``kind create``, a rollout) gets its own time limit and, when it
fails or overruns, says what it was doing, its command and the end of its output. The tests' own
pytest-timeout then covers the test function alone (``func_only``), so a slow runner reports the step that was
slow, not a bare timeout of the whole module setup.

Both suites are opt-in (``make e2e``, ``make image-test``): a build takes minutes, so ``make test`` never
starts one, even where an engine runs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The base the Dockerfile builds from unless BASE_IMAGE names another (`make base-image` builds a local one).
DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
#: An already-built image to test instead of building one.
GIVEN_IMAGE = os.environ.get("MODELYARD_E2E_IMAGE", "")
BUILD_TIMEOUT = 1200
PULL_TIMEOUT = 300
OUTPUT_TAIL_LINES = 40


def skip_unless_runnable(
    suite: str, *, opt_in: str, target: str, problem: Callable[[], str | None]
) -> pytest.MarkDecorator:
    """Skip ``suite`` unless the environment variable ``opt_in`` is 1 and ``problem()`` finds nothing in the way,
    with the reason. Where MODELYARD_E2E_REQUIRED=1 (CI), an opted-in suite that cannot run is a collection
    error instead, so a runner that lost its engine fails rather than passes with everything skipped."""
    if os.environ.get(opt_in) != "1":
        return pytest.mark.skip(reason=f"{suite}: opt-in, run by `{target}` (or {opt_in}=1)")
    reason = problem()
    if reason is not None and os.environ.get("MODELYARD_E2E_REQUIRED") == "1":
        raise RuntimeError(f"{suite} cannot run, and MODELYARD_E2E_REQUIRED=1: {reason}")
    return pytest.mark.skipif(reason is not None, reason=f"{suite}: {reason}")


class StepFailed(AssertionError):
    """A bounded step failed or overran; the message names the step."""


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _tail(stdout: str | bytes | None, stderr: str | bytes | None) -> str:
    lines = (_text(stdout) + _text(stderr)).splitlines()
    return "\n".join(lines[-OUTPUT_TAIL_LINES:])


def run_step(
    what: str,
    args: Sequence[str],
    *,
    timeout: float,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` for at most ``timeout`` seconds; a failure or an overrun raises StepFailed naming ``what``."""
    command = shlex.join(args)
    try:
        result = subprocess.run(
            list(args), input=stdin, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(
            f"{what}: not done after {timeout:g} s\n$ {command}\n{_tail(exc.stdout, exc.stderr)}"
        ) from None
    if check and result.returncode != 0:
        raise StepFailed(
            f"{what}: failed with exit status {result.returncode}\n$ {command}\n{_tail(result.stdout, result.stderr)}"
        )
    return result


def docker_problem() -> str | None:
    """Why no Docker engine can be used here, or None."""
    if shutil.which("docker") is None:
        return "`docker` is not on PATH"
    try:
        run_step("docker info", ["docker", "info"], timeout=20)
    except StepFailed:
        return "`docker info` failed: no Docker engine is reachable"
    return None


def base_image() -> str:
    return os.environ.get("BASE_IMAGE") or DEFAULT_BASE_IMAGE


def is_local(image: str) -> bool:
    inspect = ["docker", "image", "inspect", image]
    return run_step(f"looking for {image}", inspect, timeout=30, check=False).returncode == 0


def image_problem() -> str | None:
    """Why no image can be had: neither MODELYARD_E2E_IMAGE nor a base image present or pullable; or None."""
    if GIVEN_IMAGE:
        return None if is_local(GIVEN_IMAGE) else f"MODELYARD_E2E_IMAGE={GIVEN_IMAGE} is not a local image"
    base = base_image()
    if is_local(base):
        return None
    try:
        run_step(f"pulling the base image {base}", ["docker", "pull", base], timeout=PULL_TIMEOUT)
    except StepFailed as exc:
        last_line = str(exc).splitlines()[-1]
        return (
            f"no base image: {base} is not local and cannot be pulled ({last_line}); "
            "`make base-image` builds one from Debian's mirror, then BASE_IMAGE=modelyard-base:bookworm"
        )
    return None


def image(tag: str) -> str:
    """MODELYARD_E2E_IMAGE when given, else ``tag`` built by tools/build_image.sh (BASE_IMAGE, BUILD_CA)."""
    if GIVEN_IMAGE:
        return GIVEN_IMAGE
    env = {**os.environ, "BASE_IMAGE": base_image()}
    run_step(
        f"building the image {tag} from {env['BASE_IMAGE']}",
        [str(ROOT / "tools" / "build_image.sh"), tag],
        timeout=BUILD_TIMEOUT,
        env=env,
    )
    return tag
