"""UTC calendar periods: the label that names a period in the store's keys and when the period ends.

The gateway names the periods and passes them to the store's scripts: calendar arithmetic in Lua cost the
store more than all of a request's Redis commands. Pods' clocks may differ by seconds; that only moves a
period's boundary by as much.
"""

from __future__ import annotations

import datetime
import functools

from modelyard_proxy.tenancy.ledger import PeriodHold
from modelyard_routing.consumer_spec import BudgetPeriod
from modelyard_routing.usage import MAX_USAGE_DAYS

#: Period keys live this long past their period's end, so a late settlement still finds its period.
PERIOD_MARGIN_S = 3600
#: Per-day, per-model usage is kept this long (the report may ask for up to 35 days).
USAGE_RETENTION_S = 36 * 86400
#: Every period, in the order reports list them.
PERIODS = (BudgetPeriod.HOUR, BudgetPeriod.DAY, BudgetPeriod.MONTH)


def _utc(epoch_s: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(int(epoch_s), tz=datetime.UTC)


def period_hold(period: BudgetPeriod, epoch_s: float) -> PeriodHold:
    """The period containing ``epoch_s``: its label and its end."""
    moment = _utc(epoch_s)
    if period is BudgetPeriod.HOUR:
        start = moment.replace(minute=0, second=0)
        return PeriodHold(period, start.strftime("%Y-%m-%dT%H"), int((start + datetime.timedelta(hours=1)).timestamp()))
    if period is BudgetPeriod.DAY:
        start = moment.replace(hour=0, minute=0, second=0)
        return PeriodHold(period, start.strftime("%Y-%m-%d"), int((start + datetime.timedelta(days=1)).timestamp()))
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    end = datetime.datetime(year, month, 1, tzinfo=datetime.UTC)
    return PeriodHold(period, moment.strftime("%Y-%m"), int(end.timestamp()))


def current_periods(epoch_s: float) -> tuple[PeriodHold, ...]:
    """The hour, day and month containing ``epoch_s`` (computed once an hour: every request asks)."""
    return _periods_of_hour(int(epoch_s // 3600))


@functools.lru_cache(maxsize=8)
def _periods_of_hour(hour: int) -> tuple[PeriodHold, ...]:
    return tuple(period_hold(period, hour * 3600) for period in PERIODS)


def day_label(epoch_s: float) -> str:
    return _utc(epoch_s).strftime("%Y-%m-%d")


def usage_days(days: int) -> int:
    """How many days a report may cover: at least today, at most what the store keeps."""
    return max(1, min(days, MAX_USAGE_DAYS))


def past_days(epoch_s: float, days: int) -> tuple[str, ...]:
    """Today and the ``days - 1`` days before it, newest first."""
    return tuple(day_label(epoch_s - back * 86400) for back in range(usage_days(days)))


def rfc3339(epoch_s: float) -> str:
    """``2026-12-07T00:00:00Z``: second precision, UTC."""
    return _utc(epoch_s).strftime("%Y-%m-%dT%H:%M:%SZ")
