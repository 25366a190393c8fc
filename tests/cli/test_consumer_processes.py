"""Two ``modelyard serve`` processes sharing one redis-server: a consumer's limits and budget are global.

The processes are real (their own interpreters and event loops), as two proxy pods would be.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from modelyard_routing.usage import ADMIN_USAGE_PATH, ConsumerUsage, PeriodUsage, UsageReport
from tests.cli.test_cli import free_port, get_json, modelyard, process, running_simulator, wait_for
from tests.harness import copy_examples
from tests.storeserver import StoreServer

pytestmark = pytest.mark.timeout(90)

KEY = "sk-processes-team-0123456789"
ADMIN_TOKEN = "processes-test-admin-token"
PROMPT = "hi [simulate latency-ms=2500]"


def consumer_manifests(folder: Path, spec: dict[str, object]) -> None:
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "team-keys", "namespace": "default"},
            "stringData": {"key": KEY},
        },
        {
            "apiVersion": "modelyard.io/v1alpha1",
            "kind": "ModelConsumer",
            "metadata": {"name": "team", "namespace": "default"},
            "spec": {"keys": {"secretRefs": [{"name": "team-keys"}]}, "models": ["gpt-4o"], **spec},
        },
    ]
    (folder / "team.yaml").write_text(yaml.safe_dump_all(docs))


@contextlib.contextmanager
def two_gateways(tmp_path: Path, store: StoreServer, spec: dict[str, object]) -> Iterator[tuple[list[str], str]]:
    """Two single-process gateways on their own ports, counting in ``store``: their URLs, and the first one's
    admin port URL."""
    with running_simulator(tmp_path / "simulator.log") as upstream:
        folder = copy_examples(tmp_path / "manifests", upstream)
        consumer_manifests(folder, spec)
        ports, admin_ports = [free_port(), free_port()], [free_port(), free_port()]
        env = {
            "MODELYARD_STORE_URL": store.url,
            "MODELYARD_STORE_TIMEOUT_MS": "1000",
            "MODELYARD_WORKERS": "1",
            "MODELYARD_ADMIN_TOKEN": ADMIN_TOKEN,
        }
        with contextlib.ExitStack() as stack:
            for index, port in enumerate(ports):
                args = modelyard("serve", "--manifests", str(folder), "--host", "127.0.0.1", "--port", str(port))
                args += ["--admin-port", str(admin_ports[index])]
                stack.enter_context(process(args, tmp_path / f"gateway-{index}.log", env))
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            for url in urls:
                wait_for(lambda url=url: get_json(f"{url}/readyz")[0] == 200)
            yield urls, f"http://127.0.0.1:{admin_ports[0]}"


def chat(url: str, text: str = "Hello!") -> tuple[int, str]:
    """One chat completion with the consumer's key: the status and the error code (empty on success)."""
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "max_tokens": 100})
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=body.encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["error"]["code"]


def test_a_rate_is_shared_by_two_processes(tmp_path: Path, store_server: StoreServer) -> None:
    with two_gateways(tmp_path, store_server, {"limits": {"requestsPerMinute": 6}}) as (urls, _):
        answers = [chat(urls[i % 2]) for i in range(10)]
    assert [status for status, _ in answers] == [200] * 6 + [429] * 4
    assert {code for _, code in answers[6:]} == {"rate_limit_exceeded"}


def test_fifty_at_once_over_two_processes_spend_no_more_than_the_budget(
    tmp_path: Path, store_server: StoreServer
) -> None:
    prompt_tokens = len(PROMPT.encode()) + 8
    per_request = (prompt_tokens * 2.5 + 100 * 10) / 1_000_000  # gpt-4o's list price, max_tokens 100
    budget = round(per_request * 10.5, 8)
    with two_gateways(tmp_path, store_server, {"budgets": [{"period": "day", "usd": budget}]}) as (urls, admin):
        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(lambda i: chat(urls[i % 2], PROMPT), range(50)))
        served = [a for a in answers if a[0] == 200]
        assert len(served) == 10
        assert {a for a in answers if a[0] != 200} == {(429, "budget_exceeded")}
        wait_for(lambda: day(admin_usage(admin)).held_usd == 0, timeout=10)
        assert 0 < day(admin_usage(admin)).spent_usd <= budget


def admin_usage(admin: str) -> UsageReport:
    """What the store holds, as a gateway's admin port reports it."""
    request = urllib.request.Request(f"{admin}{ADMIN_USAGE_PATH}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return UsageReport.model_validate_json(response.read())


def day(report: UsageReport) -> PeriodUsage:
    return next(p for p in team_usage(report).periods if p.period == "day")


def test_without_a_store_a_pod_reports_the_sum_of_its_workers_counts(tmp_path: Path) -> None:
    with running_simulator(tmp_path / "simulator.log") as upstream:
        folder = copy_examples(tmp_path / "manifests", upstream)
        consumer_manifests(folder, {"budgets": [{"period": "month", "usd": 100}]})
        port, admin_port = free_port(), free_port()
        args = modelyard("serve", "--manifests", str(folder), "--host", "127.0.0.1", "--port", str(port))
        args += ["--admin-port", str(admin_port), "--workers", "2"]
        with process(args, tmp_path / "gateway.log", {"MODELYARD_ADMIN_TOKEN": ADMIN_TOKEN}):
            url, admin = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
            wait_for(lambda: get_json(f"{url}/readyz")[0] == 200)
            wait_for(lambda: admin_usage(admin).store == "local")
            for _ in range(8):  # each on a fresh connection: the kernel spreads them over the workers
                assert chat(url)[0] == 200
            wait_for(lambda: sum(d.requests for d in team_usage(admin_usage(admin)).days) == 8, timeout=10)
            report = admin_usage(admin)
    month = next(p for p in team_usage(report).periods if p.period == "month")
    assert month.spent_usd == pytest.approx(sum(d.cost_usd for d in team_usage(report).days))
    assert month.remaining_usd == pytest.approx(100 - month.spent_usd)


def team_usage(report: UsageReport) -> ConsumerUsage:
    return next(c for c in report.consumers if c.name == "default/team")
