"""Runs kopf embedded, so the operator-wide context is a typed object rather than kopf's default dict.

Exactly one replica may run (a Deployment with ``replicas: 1`` and ``strategy: Recreate``), hence
``standalone=True``: kopf's peering pauses operators on seeing each other, it does not elect a leader.
"""

from __future__ import annotations

import asyncio
import logging

import kopf

from modelyard_operator import handlers, health  # noqa: F401 - importing handlers registers them with kopf
from modelyard_operator.context import OperatorContext
from modelyard_operator.settings import OperatorSettings

log = logging.getLogger(__name__)


async def operate(settings: OperatorSettings) -> None:
    """Run the operator until SIGTERM or SIGINT."""
    context = OperatorContext.create(settings)
    scope = ", ".join(settings.watch_namespaces) or "all namespaces"
    log.info("serving routes in %s; proxies and the table Secret in %s", scope, settings.namespace)
    namespaces = settings.kopf_namespaces()
    probes = await health.serve(context, settings.health_port) if settings.health_port else None
    try:
        await kopf.operator(standalone=True, clusterwide=not namespaces, namespaces=namespaces, memo=context)
    finally:
        if probes is not None:
            await probes.cleanup()


def main(settings: OperatorSettings) -> None:
    """Blocking entry point for ``modelyard operator``."""
    asyncio.run(operate(settings))
