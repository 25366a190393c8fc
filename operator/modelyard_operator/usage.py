"""Reads what the consumers spent from one ready proxy's usage endpoint, for their status.

With a shared counter store (``store: shared``) every pod counts into the same place, so one pod's answer
is the whole gateway's spend; that is why asking one ready proxy is enough. Without a store each pod
counts only what it served (``store: local``), and the status shows that one pod's share: a warning says
so. When no proxy answers, the last report stays in use, so a passing outage neither blanks the usage in
any status nor touches a condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import aiohttp
from pydantic import ValidationError

from modelyard_operator.discovery import ProxyEndpoint
from modelyard_routing.push import AdminToken
from modelyard_routing.usage import ADMIN_USAGE_PATH, ConsumerUsage, UsageReport

log = logging.getLogger(__name__)

#: Proxies asked per refresh before giving up until the next one, so a refresh is bounded in time.
MAX_PROXIES_ASKED = 3


class UsageReader:
    """Keeps the latest usage report, refreshed every ``interval`` seconds from one ready proxy.

    ``on_change`` is called when the figures (not just the report's time) changed, so statuses are rewritten
    only then.
    """

    def __init__(
        self,
        token: AdminToken,
        endpoints: Callable[[], Sequence[ProxyEndpoint]],
        on_change: Callable[[], None],
        *,
        interval: float,
        timeout: float,
    ) -> None:
        self._token = token
        self._endpoints = endpoints
        self._on_change = on_change
        self._interval = interval
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._preferred = ""
        self._warned_local = False
        self.report: UsageReport | None = None

    def of(self, name: str) -> ConsumerUsage | None:
        """What the last report says about the consumer ``namespace/name``, if anything."""
        if self.report is None:
            return None
        return next((usage for usage in self.report.consumers if usage.name == name), None)

    async def run(self) -> None:
        """Refresh forever (until cancelled)."""
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading usage failed; trying again in %.0fs", self._interval)
            await asyncio.sleep(self._interval)

    async def refresh(self) -> bool:
        """Ask ready proxies in turn (the one that answered last first) until one answers; False if none did."""
        ready = [endpoint for endpoint in self._endpoints() if endpoint.ready]
        ready.sort(key=lambda endpoint: endpoint.name != self._preferred)
        for endpoint in ready[:MAX_PROXIES_ASKED]:
            report = await self._ask(endpoint)
            if report is None:
                continue
            self._preferred = endpoint.name
            self._warn_if_local(report, len(ready))
            changed = self.report is None or self.report.consumers != report.consumers
            self.report = report
            if changed:
                self._on_change()
            return True
        return False

    async def _ask(self, endpoint: ProxyEndpoint) -> UsageReport | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Authorization": f"Bearer {self._token.value()}"}
        try:
            async with self._session.get(endpoint.url + ADMIN_USAGE_PATH, headers=headers) as resp:
                if resp.status != 200:
                    log.warning("proxy %s answered HTTP %d for usage", endpoint.name, resp.status)
                    return None
                return UsageReport.model_validate_json(await resp.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("proxy %s did not answer for usage: %s", endpoint.name, type(exc).__name__)
        except ValidationError:
            log.warning("proxy %s answered something that is not a usage report", endpoint.name)
        return None

    def _warn_if_local(self, report: UsageReport, proxies: int) -> None:
        if report.store == "local" and proxies > 1 and not self._warned_local:
            log.warning("proxies count usage without a shared store: status shows one pod's share of the spend")
            self._warned_local = True

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
            self._session = None
