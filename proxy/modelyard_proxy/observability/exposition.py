"""Merging the workers' Prometheus expositions into the one a scrape of the pod's admin port returns.

Counters and histograms (``_bucket``, ``_sum`` and ``_count`` alike) are summed over the workers per label
set: the pod served what its workers served, and a histogram's buckets add up like its count. Gauges
describe one process's state (its circuit breakers, the table it loaded, whether it refused the last
candidate), which can differ between workers (a breaker opens in the worker that saw the failures); a max
or a sum would report a state no process is in, so each gauge series is kept per worker with an added
``worker="<index>"`` label. ``max by (…)`` or ``sum by (…)`` in PromQL folds them when wanted.

A restarted worker counts from zero again. The last counts scraped from its predecessor are kept as a
retired baseline, so the pod's sums never go backwards (which Prometheus would take for a counter reset),
and a worker that misses a scrape contributes its last counts rather than none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from modelyard_proxy.observability.metrics import sample_value

#: Kinds whose series add up across processes.
SUMMED = frozenset({"counter", "histogram"})


@dataclasses.dataclass
class Family:
    """One metric family: its help, its kind, and each series (name and label block as rendered) to its value."""

    help: str = ""
    kind: str = "untyped"
    samples: dict[str, float] = dataclasses.field(default_factory=dict)


Exposition = dict[str, Family]


@dataclasses.dataclass(frozen=True, slots=True)
class Scrape:
    """One worker's answer: its exposition, or None when it did not answer."""

    worker: int
    #: Which process filled the worker's slot (it changes when the worker is restarted).
    incarnation: int
    text: str | None


def parse(text: str) -> Exposition:
    """The families of a text exposition (format 0.0.4, without timestamps, as ``Metrics.render`` writes it)."""
    families: Exposition = {}
    name = ""
    for line in text.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            name, _, rest = line[7:].partition(" ")
            family = families.setdefault(name, Family())
            if line.startswith("# HELP "):
                family.help = rest
            else:
                family.kind = rest.strip()
        elif line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            if not name or not series.startswith(name):
                name = series.partition("{")[0]  # a sample without HELP or TYPE: its own untyped family
            families.setdefault(name, Family()).samples[series] = float(value)
    return families


def render(families: Exposition) -> str:
    """The text exposition of ``families``: HELP and TYPE once per family, then its series."""
    lines: list[str] = []
    for name, family in families.items():
        if family.help:
            lines.append(f"# HELP {name} {family.help}")
        lines.append(f"# TYPE {name} {family.kind}")
        lines.extend(f"{series} {sample_value(value)}" for series, value in family.samples.items())
    return "\n".join(lines) + "\n"


class ExpositionMerger:
    """Merges each scrape of the workers into the pod's exposition, remembering what restarts would lose."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[int, Exposition]] = {}
        self._retired: Exposition = {}

    def merge(self, scrapes: Iterable[Scrape]) -> str:
        """The pod's exposition: summed counters and histograms, per-worker gauges (see the module docstring)."""
        fresh: dict[int, Exposition] = {}
        for scrape in scrapes:
            if scrape.text is None:
                continue
            parsed = parse(scrape.text)
            last = self._last.get(scrape.worker)
            if last is not None and last[0] != scrape.incarnation:
                _add_sums(self._retired, last[1])
            self._last[scrape.worker] = (scrape.incarnation, parsed)
            fresh[scrape.worker] = parsed
        merged: Exposition = {}
        for _, (_, exposition) in sorted(self._last.items()):
            _add_sums(merged, exposition)
        _add_sums(merged, self._retired)
        for worker, exposition in sorted(fresh.items()):
            for name, family in exposition.items():
                if family.kind not in SUMMED:
                    into = merged.setdefault(name, Family(family.help, family.kind))
                    into.samples.update((_with_worker(series, worker), v) for series, v in family.samples.items())
        return render(merged)


def _add_sums(into: Exposition, exposition: Exposition) -> None:
    """Add ``exposition``'s counters and histograms to ``into``; only the headers of its other families."""
    for name, family in exposition.items():
        target = into.setdefault(name, Family(family.help, family.kind))
        if family.kind in SUMMED:
            for series, value in family.samples.items():
                target.samples[series] = target.samples.get(series, 0.0) + value


def _with_worker(series: str, worker: int) -> str:
    name, brace, labels = series.partition("{")
    label = f'worker="{worker}"'
    if not brace or labels == "}":
        return f"{name}{{{label}}}"
    return f"{name}{{{label},{labels}"
