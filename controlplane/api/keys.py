"""Typed aiohttp application keys (aiohttp warns on string keys; typed keys keep handlers honest)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from controlplane.api.inspection import Inspector
from controlplane.observability import Metrics
from controlplane.store.base import Store

STORE: Final = web.AppKey("store", Store)
METRICS: Final = web.AppKey("metrics", Metrics)
INSPECTOR: Final = web.AppKey("inspector", Inspector)
MAX_BODY: Final = web.AppKey("max_body", int)
