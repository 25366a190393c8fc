"""The audit trail's buffering: lines wait in memory, then go out together, in the log's own line format."""

from __future__ import annotations

import asyncio
import io
import logging
import re

import orjson
import pytest
from aiohttp import web

from modelyard_proxy.observability import auditlog
from modelyard_proxy.observability.auditlog import AuditLog

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO modelyard\.audit: (\{.*\})$")


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    found = []
    for line in stream.getvalue().splitlines():
        match = LINE.match(line)
        assert match, f"not an audit line: {line!r}"
        found.append(orjson.loads(match.group(1)))
    return found


def test_lines_are_held_until_flushed_then_written_together() -> None:
    stream = io.StringIO()
    audit = AuditLog(stream)
    audit.write({"request_id": "a", "status": 200})
    audit.write({"request_id": "b", "status": 502})
    assert stream.getvalue() == ""
    audit.flush()
    assert lines(stream) == [{"request_id": "a", "status": 200}, {"request_id": "b", "status": 502}]
    audit.flush()  # nothing queued: nothing written twice
    assert len(lines(stream)) == 2


def test_a_full_buffer_is_written_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auditlog, "MAX_BUFFERED", 200)
    stream = io.StringIO()
    audit = AuditLog(stream)
    for index in range(3):
        audit.write({"request_id": str(index), "padding": "x" * 60})  # lines of ~120 characters
    assert [line["request_id"] for line in lines(stream)] == ["0", "1"]  # out when the buffer passed 200


def test_the_audit_loggers_level_switches_lines_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="modelyard.audit"):
        assert AuditLog().enabled()
    with caplog.at_level(logging.WARNING, logger="modelyard.audit"):
        assert not AuditLog().enabled()


async def test_the_apps_lifetime_flushes_periodically_and_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auditlog, "FLUSH_INTERVAL", 0.01)
    stream = io.StringIO()
    audit = AuditLog(stream)
    app = web.Application()
    app.cleanup_ctx.append(audit.flushing())
    runner = web.AppRunner(app)
    await runner.setup()
    audit.write({"request_id": "periodic"})
    for _ in range(100):
        if stream.getvalue():
            break
        await asyncio.sleep(0.01)
    assert [line["request_id"] for line in lines(stream)] == ["periodic"]
    audit.write({"request_id": "last"})
    await runner.cleanup()
    assert [line["request_id"] for line in lines(stream)] == ["periodic", "last"]
