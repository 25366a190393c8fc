"""The Docker suites' bounded steps report which step failed or overran, with its command and output."""

from __future__ import annotations

import sys

import pytest
from e2e.steps import StepFailed, run_step


@pytest.mark.parametrize(
    ("what", "program", "timeout", "report", "output"),
    [
        (
            "creating the cluster",
            "import time; print('pulling layers', flush=True); time.sleep(30)",
            2,
            "creating the cluster: not done after 2 s",
            "pulling layers",
        ),
        (
            "building the image",
            "import sys; print('no space left on device', file=sys.stderr); sys.exit(3)",
            30,
            "building the image: failed with exit status 3",
            "no space left on device",
        ),
    ],
    ids=["overrun", "failure"],
)
def test_a_step_that_goes_wrong_is_named_with_its_output(
    what: str, program: str, timeout: float, report: str, output: str
) -> None:
    with pytest.raises(StepFailed) as failure:
        run_step(what, [sys.executable, "-c", program], timeout=timeout)
    message = str(failure.value)
    assert message.startswith(report)
    assert f"$ {sys.executable} -c" in message
    assert output in message


def test_a_step_that_succeeds_returns_its_output() -> None:
    assert run_step("echo", [sys.executable, "-c", "print('ok')"], timeout=30).stdout == "ok\n"
