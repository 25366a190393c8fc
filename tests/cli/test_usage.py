"""``modelyard usage`` as users run it: a real process against a real admin port serving a UsageReport.

The admin port here is a small aiohttp server answering the documented interface (``ADMIN_USAGE_PATH``
behind a bearer token, ``?days=N``), so the command's output, filters and every failure are checked end to
end, and no run may print the token.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from modelyard_routing.usage import ADMIN_USAGE_PATH, ConsumerUsage, DayUsage, PeriodUsage, UsageReport
from tests.cli.test_cli import free_port
from tests.harness import start_server

pytestmark = pytest.mark.timeout(60)

TOKEN = "usage-test-admin-token-5f1c"
REPORT = UsageReport(
    store="shared",
    store_up=True,
    generated_at="2026-12-06T16:40:00Z",
    consumers=(
        ConsumerUsage(
            name="search/team-search",
            labels={"team": "search"},
            periods=(
                PeriodUsage(
                    period="day",
                    budget_usd=25.0,
                    spent_usd=3.5,
                    held_usd=0.000125,
                    remaining_usd=21.499875,
                    resets_at="2026-12-07T00:00:00Z",
                ),
                PeriodUsage(
                    period="month",
                    budget_usd=500.0,
                    spent_usd=1234.5,
                    held_usd=0.0,
                    remaining_usd=0.0,
                    resets_at="2027-01-01T00:00:00Z",
                ),
            ),
            days=(
                DayUsage(
                    day="2026-12-06",
                    model="gpt-4o",
                    requests=1200,
                    input_tokens=345678,
                    output_tokens=91011,
                    cost_usd=3.25,
                ),
                DayUsage(
                    day="2026-12-05",
                    model="claude-sonnet",
                    requests=7,
                    input_tokens=700,
                    output_tokens=70,
                    cost_usd=0.25,
                ),
            ),
        ),
        ConsumerUsage(
            name="ads/team-ads",
            periods=(
                PeriodUsage(
                    period="hour",
                    budget_usd=None,
                    spent_usd=0.01,
                    held_usd=0.0,
                    remaining_usd=None,
                    resets_at="2026-12-06T17:00:00Z",
                ),
            ),
            days=(
                DayUsage(
                    day="2026-12-06",
                    model="gemini-flash",
                    requests=3,
                    input_tokens=30,
                    output_tokens=12,
                    cost_usd=0.000042,
                ),
            ),
        ),
    ),
)


@dataclass
class AdminPort:
    """The fake admin port: what it answers next, and the ``days`` each request asked for."""

    url: str
    body: bytes
    status: int = 200
    delay: float = 0.0
    asked_days: list[str] = field(default_factory=list)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
async def admin() -> AsyncIterator[AdminPort]:
    port = AdminPort(url="", body=REPORT.model_dump_json().encode())

    async def usage(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"message": "a valid admin bearer token is required"}, status=401)
        port.asked_days.append(request.query.get("days", ""))
        await asyncio.sleep(port.delay)
        return web.Response(body=port.body, status=port.status, content_type="application/json")

    app = web.Application()
    app.router.add_get(ADMIN_USAGE_PATH, usage)
    server = await start_server(app)
    port.url = str(server.make_url("")).rstrip("/")
    yield port
    await server.close()


async def usage(*args: str, token: str | None = TOKEN) -> Run:
    """``modelyard usage`` in its own process (the token in its env when given); never prints the token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_ADMIN")}
    if token is not None:
        env["MODELYARD_ADMIN_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "modelyard", "usage", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    run = Run(proc.returncode, out.decode(), err.decode())
    for secret in (TOKEN, token):
        assert not secret or secret not in run.out + run.err
    assert "Traceback" not in run.err
    return run


def rows(text: str, first: str) -> list[list[str]]:
    """The lines of ``text`` starting with ``first``, split into cells on runs of two or more spaces."""
    return [[cell for cell in line.split("  ") if cell] for line in text.splitlines() if line.startswith(first)]


async def test_tables_show_budget_periods_and_spend_by_consumer_model_and_day(admin: AdminPort) -> None:
    run = await usage("--admin-url", admin.url, "--days", "3")
    assert run.code == 0, run.err
    assert admin.asked_days == ["3"]
    assert "store: shared, up" in run.out
    cells = [[c.strip() for c in row] for row in rows(run.out, "search/team-search")]
    assert cells[0][:6] == ["search/team-search", "day", "$25.00", "$3.50", "$0.000125", "$21.50"]
    assert cells[0][6] == "2026-12-07T00:00:00Z (in 7h 20m)"
    assert cells[1][:6] == ["search/team-search", "month", "$500.00", "$1,234.50", "$0.00", "$0.00"]
    assert cells[1][6] == "2027-01-01T00:00:00Z (in 25d 7h 20m)"
    # Spend, oldest day first: requests, input and output tokens, cost.
    assert cells[2] == ["search/team-search", "2026-12-05", "claude-sonnet", "7", "700", "70", "$0.25"]
    assert cells[3] == ["search/team-search", "2026-12-06", "gpt-4o", "1,200", "345,678", "91,011", "$3.25"]
    ads = [[c.strip() for c in row] for row in rows(run.out, "ads/team-ads")]
    assert ads[0][:6] == ["ads/team-ads", "hour", "-", "$0.01", "$0.00", "-"]
    assert ads[1] == ["ads/team-ads", "2026-12-06", "gemini-flash", "3", "30", "12", "$0.000042"]
    assert [c.strip() for c in rows(run.out, "TOTAL")[0]] == ["TOTAL", "1,210", "346,408", "91,093", "$3.50"]


async def test_columns_are_aligned(admin: AdminPort) -> None:
    run = await usage("--admin-url", admin.url)
    lines = run.out.splitlines()
    header = next(index for index, line in enumerate(lines) if "REQUESTS" in line)
    spend = lines[header : header + 5]
    assert len({len(line) for line in spend}) == 1, spend  # the COST column is right-aligned
    for column in ("REQUESTS", "INPUT TOKENS", "OUTPUT TOKENS"):
        end = spend[0].index(column) + len(column)
        assert all(line[end - 1] != " " and line[end] == " " for line in spend), column


async def test_consumer_filter_by_name_or_namespace_and_name(admin: AdminPort) -> None:
    for name in ("team-ads", "ads/team-ads"):
        run = await usage("--admin-url", admin.url, "--consumer", name)
        assert run.code == 0, run.err
        assert "ads/team-ads" in run.out
        assert "search" not in run.out
        assert [c.strip() for c in rows(run.out, "TOTAL")[0]][-1] == "$0.000042"


async def test_unknown_consumer_names_the_known_ones(admin: AdminPort) -> None:
    run = await usage("--admin-url", admin.url, "--consumer", "team-nobody")
    assert run.code == 1
    assert run.out == ""
    assert "no consumer 'team-nobody'" in run.err
    assert "search/team-search, ads/team-ads" in run.err


async def test_json_is_the_report(admin: AdminPort) -> None:
    run = await usage("--admin-url", admin.url, "--json")
    assert run.code == 0, run.err
    assert UsageReport.model_validate(json.loads(run.out)) == REPORT
    filtered = await usage("--admin-url", admin.url, "--json", "--consumer", "search/team-search")
    report = UsageReport.model_validate(json.loads(filtered.out))
    assert [c.name for c in report.consumers] == ["search/team-search"]
    assert report.consumers[0] == REPORT.consumers[0]


async def test_token_from_a_file(admin: AdminPort, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    run = await usage("--admin-url", admin.url, "--token-file", str(token_file), token=None)
    assert run.code == 0, run.err
    assert "search/team-search" in run.out


async def test_refused_token_is_one_clear_line(admin: AdminPort, tmp_path: Path) -> None:
    wrong = tmp_path / "token"
    wrong.write_text("not-the-admin-token-9d2e")
    run = await usage("--admin-url", admin.url, "--token-file", str(wrong), token=None)
    assert run.code == 1
    assert run.out == ""
    assert "refused the admin token (HTTP 401)" in run.err
    assert "not-the-admin-token-9d2e" not in run.err
    assert len(run.err.strip().splitlines()) == 1


async def test_no_token_is_a_usage_error(admin: AdminPort, tmp_path: Path) -> None:
    run = await usage("--admin-url", admin.url, token=None)
    assert (run.code, run.out) == (2, "")
    assert "needs a token (--token-file or MODELYARD_ADMIN_TOKEN)" in run.err
    missing = await usage("--admin-url", admin.url, "--token-file", str(tmp_path / "absent"), token=None)
    assert missing.code == 2
    assert "no admin token in" in missing.err
    assert admin.asked_days == []


async def test_unreachable_port() -> None:
    run = await usage("--admin-url", f"http://127.0.0.1:{free_port()}")
    assert (run.code, run.out) == (1, "")
    assert "cannot reach http://127.0.0.1:" in run.err
    assert "connection refused" in run.err


async def test_slow_answer_is_cut_off_at_the_timeout(admin: AdminPort) -> None:
    admin.delay = 5.0
    run = await usage("--admin-url", admin.url, "--timeout", "0.3")
    assert (run.code, run.out) == (1, "")
    assert "did not answer within 0.3s" in run.err


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (200, b"<html>not json</html>", "answered something that is not JSON"),
        (200, b'{"store": "shared"}', "JSON that is not a usage report: report.store_up: Field required"),
        (200, b'{"store": "elsewhere", "store_up": true, "generated_at": "x"}', "report.store: Input should be"),
        (500, b'{"message": "counter store exploded"}', "answered HTTP 500: counter store exploded"),
        (404, b"", "has no /admin/v1/usage (HTTP 404)"),
    ],
)
async def test_answers_that_are_not_a_report(admin: AdminPort, status: int, body: bytes, message: str) -> None:
    admin.status, admin.body = status, body
    run = await usage("--admin-url", admin.url)
    assert (run.code, run.out) == (1, "")
    assert message in run.err
    assert len(run.err.strip().splitlines()) == 1


async def test_bad_arguments_are_refused_before_any_request(admin: AdminPort) -> None:
    days = await usage("--admin-url", admin.url, "--days", "36")
    assert days.code == 2
    assert "--days: must be from 1 to 35" in days.err
    url = await usage("--admin-url", "ftp://example.com")
    assert url.code == 2
    assert "is not an http(s) URL" in url.err
    assert admin.asked_days == []


async def test_an_empty_report_says_so(admin: AdminPort) -> None:
    admin.body = (
        UsageReport(store="local", store_up=False, generated_at="2026-12-06T16:40:00Z").model_dump_json().encode()
    )
    run = await usage("--admin-url", admin.url)
    assert run.code == 0, run.err
    assert "store: local, NOT ANSWERING" in run.out
    assert "No consumers in the report." in run.out
