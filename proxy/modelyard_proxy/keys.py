"""Typed application keys: everything the handlers share lives on the app under one of these."""

from __future__ import annotations

from aiohttp import web
from opentelemetry import context, trace

from modelyard_proxy.base.settings import ProxySettings
from modelyard_proxy.conversations import ConversationStore
from modelyard_proxy.observability.auditlog import AuditLog
from modelyard_proxy.observability.metrics import Metrics
from modelyard_proxy.routing.health import HealthRegistry
from modelyard_proxy.table.store import Caller, TableStore
from modelyard_proxy.tenancy.counters import Counters
from modelyard_proxy.upstream import UpstreamClient

SETTINGS = web.AppKey("settings", ProxySettings)
STORE = web.AppKey("store", TableStore)
#: The pooled client every upstream call goes through.
UPSTREAM = web.AppKey("upstream", UpstreamClient)
#: Per-target breakers and latency, by target id: outlives every routing table swap.
HEALTH = web.AppKey("health", HealthRegistry)
REQUEST_ID = web.RequestKey("request_id", str)
#: Counters and histograms the admin port's ``/metrics`` renders.
METRICS = web.AppKey("metrics", Metrics)
TRACER = web.AppKey("tracer", trace.Tracer)
#: Where each request's audit line goes.
AUDIT = web.AppKey("audit", AuditLog)
#: The request's server span, and the trace context it continues (a client's ``traceparent``, if any).
SPAN = web.RequestKey("span", trace.Span)
TRACE_PARENT = web.RequestKey("trace_parent", context.Context)
#: Who the request's gateway key belongs to.
CALLER = web.RequestKey("caller", Caller)
#: Limits and budgets: the shared store's counters, or this process's own without one.
COUNTERS = web.AppKey("counters", Counters)
#: Where ``POST /v1/responses`` conversations are kept; None when the gateway keeps none.
CONVERSATIONS: web.AppKey[ConversationStore | None] = web.AppKey("conversations")
#: The gateway key the request presented: the owner of the conversations it keeps (only ever hashed).
API_KEY = web.RequestKey("api_key", str)
