"""Typed application keys: everything the handlers share lives on the app under one of these."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from modelyard_proxy.routing.health import HealthRegistry
from modelyard_proxy.settings import ProxySettings
from modelyard_proxy.store import TableStore

SETTINGS = web.AppKey("settings", ProxySettings)
STORE = web.AppKey("store", TableStore)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)
#: Per-target breakers and latency, by target id: outlives every routing table swap.
HEALTH = web.AppKey("health", HealthRegistry)
REQUEST_ID = web.RequestKey("request_id", str)
