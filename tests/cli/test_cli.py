"""The ``modelyard`` command as users run it: real processes, real ports, the README's own snippets."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import DEMO_KEY, EXAMPLES, REPO, copy_examples

pytestmark = pytest.mark.timeout(90)


def modelyard(*args: str) -> list[str]:
    return [sys.executable, "-m", "modelyard", *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str, key: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if predicate():  # type: ignore[operator]
                return
        time.sleep(0.1)
    pytest.fail("condition not reached in time")


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` for the block's duration, its output in ``log`` (a pipe could fill and stall it), with
    ``env`` added to the environment."""
    with log.open("wb") as output:
        environment = {**os.environ, **(env or {})}
        proc = subprocess.Popen(args, cwd=REPO, stdout=output, stderr=subprocess.STDOUT, env=environment)
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextlib.contextmanager
def running_simulator(log: Path) -> Iterator[str]:
    """``modelyard simulate`` on a free port for the block's duration; its base URL once it answers."""
    port = free_port()
    with process(modelyard("simulate", "--port", str(port)), log):
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: get_json(f"{url}/v1/models")[0] == 200)
        yield url


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``make run`` on free ports: the simulator plus ``modelyard serve`` on a copy of the examples."""
    gw_port = free_port()
    with running_simulator(tmp_path / "simulator.log") as simulator:
        folder = copy_examples(tmp_path / "manifests", simulator)
        serve = modelyard(
            *("serve", "--manifests", str(folder), "--host", "127.0.0.1", "--port", str(gw_port)),
            *("--reload-interval", "0.2"),
            *("--workers", "1"),  # one process: /readyz, which the reload test reads, is each worker's own
        )
        with process(serve, tmp_path / "gateway.log"):
            base = f"http://127.0.0.1:{gw_port}"
            wait_for(lambda: get_json(f"{base}/readyz")[0] == 200)
            yield base, folder


def readme_block(language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    assert match, f"README has no {language} block"
    return match.group(1)


def slow_stream_request(base: str) -> urllib.request.Request:
    """A streamed chat whose five tokens arrive 150 ms apart: in flight long enough to outlive a SIGTERM."""
    body = json.dumps(
        {
            "model": "gpt-4o",
            "stream": True,
            "messages": [{"role": "user", "content": "one two three four five [simulate token-interval-ms=150]"}],
        }
    ).encode()
    return urllib.request.Request(
        f"{base}/v1/chat/completions",
        data=body,
        headers={"Authorization": f"Bearer {DEMO_KEY}", "Content-Type": "application/json"},
    )


def test_readme_python_snippet_reaches_every_provider(demo: tuple[str, Path]) -> None:
    base, _ = demo
    code = readme_block("python").replace("http://127.0.0.1:8080", base)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    for model in ("gpt-4o", "azure-gpt-4o", "claude-sonnet", "gemini-flash"):
        assert f"{model} -> echo: Hello!" in result.stdout


def test_readme_curl_snippet(demo: tuple[str, Path]) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    base, _ = demo
    blocks = re.findall(r"```sh\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    curl = next(block for block in blocks if block.startswith("curl"))
    result = subprocess.run(
        ["bash", "-c", curl.replace("http://127.0.0.1:8080", base)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "echo: Hello!"


def test_serve_reloads_on_change_and_keeps_the_last_good_table(demo: tuple[str, Path]) -> None:
    base, folder = demo
    routes = folder / "routes.yaml"
    routes.write_text(routes.read_text().replace("model: gemini-flash\n", "model: gemini-fast\n"))

    def served() -> set[str]:
        status, body = get_json(f"{base}/v1/models", DEMO_KEY)
        assert status == 200
        models = body["data"]
        assert isinstance(models, list)
        return {str(m["id"]) for m in models}

    wait_for(lambda: "gemini-fast" in served())
    (folder / "broken.yaml").write_text(
        "apiVersion: modelyard.io/v1alpha1\nkind: ModelRoute\nmetadata: {name: b}\nspec: {model: b}\n"
    )
    wait_for(lambda: get_json(f"{base}/readyz")[1]["lastError"] is not None)
    _, ready = get_json(f"{base}/readyz")
    assert "ModelRoute default/b" in str(ready["lastError"])
    assert "gemini-fast" in served()
    assert ready["generation"] == 2


def test_simulate_help_names_every_api_it_speaks() -> None:
    shown = subprocess.run(modelyard("simulate", "--help"), capture_output=True, text=True, check=True).stdout
    words = " ".join(shown.split())  # argparse wraps lines at the terminal's width
    assert all(api in words for api in ("OpenAI,", "Azure OpenAI", "Anthropic", "Gemini"))


def test_compile_prints_the_table_with_keys_masked() -> None:
    result = subprocess.run(
        modelyard("compile", "--manifests", str(EXAMPLES)), capture_output=True, text=True, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["table"]["routes"]) == 6
    assert "sk-ant-sim" not in result.stdout
    assert report["table"]["credentials"][0]["api_key"] == "**********"


def test_compile_exits_non_zero_on_unresolved_references() -> None:
    result = subprocess.run(
        modelyard("compile", "--manifests", str(REPO / "examples" / "providers")),
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 1
    report = json.loads(result.stdout)
    conditions = report["conditions"]["ModelRoute default/claude"]
    assert {"type": "ResolvedRefs", "status": "False"}.items() <= conditions[1].items()


def test_serve_refuses_a_missing_folder(tmp_path: Path) -> None:
    result = subprocess.run(
        modelyard("serve", "--manifests", str(tmp_path / "missing")),
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "is not a folder" in result.stderr


def test_the_simulator_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """A pod's SIGTERM ends ``modelyard simulate`` with exit 0, as it would as a container's first process."""
    sim_port = free_port()
    with process(modelyard("simulate", "--port", str(sim_port)), tmp_path / "simulator.log") as simulator:
        wait_for(lambda: get_json(f"http://127.0.0.1:{sim_port}/v1/models")[0] == 200)
        simulator.send_signal(signal.SIGTERM)
        wait_for(lambda: simulator.poll() is not None, timeout=10)
    assert simulator.returncode == 0
    assert not accepts_connections(sim_port)


def test_sigterm_lets_an_in_flight_stream_finish(tmp_path: Path) -> None:
    """Shutdown closes the listener at once but lets a stream already under way end with ``[DONE]``."""
    gw_port = free_port()
    with running_simulator(tmp_path / "simulator.log") as simulator:
        folder = copy_examples(tmp_path / "manifests", simulator)
        gateway_args = modelyard(
            *("serve", "--manifests", str(folder), "--host", "127.0.0.1", "--port", str(gw_port), "--workers", "1")
        )
        with process(gateway_args, tmp_path / "gateway.log") as gateway:
            base = f"http://127.0.0.1:{gw_port}"
            wait_for(lambda: get_json(f"{base}/readyz")[0] == 200)
            with urllib.request.urlopen(slow_stream_request(base), timeout=30) as response:
                first = response.readline()
                gateway.send_signal(signal.SIGTERM)
                wait_for(lambda: not accepts_connections(gw_port))  # the listener closes while the stream goes on
                rest = response.read()
            wait_for(lambda: gateway.poll() is not None)
    assert first.startswith(b"data: ")
    assert rest.rstrip().endswith(b"data: [DONE]")
    assert b"five" in rest
    assert gateway.returncode == 0
