"""The operator's probes, ``/healthz`` (live) and ``/readyz`` (ready), on a port of their own.

kopf's built-in endpoint serves one path and answers as long as the event loop does, whatever the control
loop inside it is doing; a Deployment needs two answers that mean something:

- live: the control loop has not stopped and no reconcile pass has run past ``stall_timeout``; a restart is
  what clears a wedged pass;
- ready: the first reconcile finished, so the operator reached the API, listed the cluster, read the table
  Secret, published a table and wrote every status. Until then ``kubectl rollout status`` and ``helm
  --wait`` keep waiting, and a crash-looping operator shows as not ready.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from modelyard_operator.context import OperatorContext

CONTEXT: web.AppKey[OperatorContext] = web.AppKey("context", OperatorContext)


def _answer(ok: bool, verdict: str, reason: str, context: OperatorContext) -> web.Response:
    body: dict[str, Any] = {"status": verdict if ok else "failing", **context.probe()}
    if reason:
        body["reason"] = reason
    return web.json_response(body, status=200 if ok else 503)


async def healthz(request: web.Request) -> web.Response:
    """200 while the control loop works, 503 naming what is wrong."""
    context = request.app[CONTEXT]
    problem = context.stalled()
    return _answer(not problem, "ok", problem, context)


async def readyz(request: web.Request) -> web.Response:
    """200 once the first reconcile finished, 503 before."""
    context = request.app[CONTEXT]
    return _answer(context.ready, "ready", "" if context.ready else "the first reconcile has not finished", context)


async def serve(context: OperatorContext, port: int) -> web.AppRunner:
    """Serve the probes on ``port`` of every interface; the caller cleans the runner up."""
    app = web.Application()
    app[CONTEXT] = context
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, port=port).start()
    return runner
