"""Operator lifecycle: login, kopf's settings, starting and stopping the control loop."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from modelyard_operator.context import OperatorContext
from modelyard_operator.reconciler import Indices


@kopf.on.login()
async def login(memo: OperatorContext, **_: Any) -> kopf.ConnectionInfo:
    """kopf and the operator's own client log in the same way: kubeconfig, else the service account.

    Async (it only reads a file or two) so kopf runs it in the loop, not a thread sharing the client.
    """
    return memo.kube.login()


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: OperatorContext, **indexes: Any) -> None:
    """Configure kopf and start the control loop over the (still filling) indexes."""
    # The CRDs are installed before the operator, so no cluster-wide CRD watch (and no RBAC for it) is needed.
    settings.scanning.disabled = True
    # The operator posts its own Events on condition changes; kopf's per-handler Events would be noise.
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # kopf passes each index as a keyword named after its function (see handlers.watching).
    names = ("modelroutes", "providercredentials", "secrets", "proxy_endpoints", "modelconsumers")
    memo.start(Indices(*(indexes[name] for name in names)))


@kopf.on.cleanup()
async def cleanup(memo: OperatorContext, **_: Any) -> None:
    """Stop the control loop; the proxies keep serving their last table."""
    await memo.stop()
