"""Typed aiohttp application keys (aiohttp warns on string keys; typed keys keep handlers honest)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from controlplane.api.inspection import Inspector
from controlplane.auth.tokens import Tokens
from controlplane.observability import Metrics
from controlplane.store.base import Store

STORE: Final = web.AppKey("store", Store)
METRICS: Final = web.AppKey("metrics", Metrics)
INSPECTOR: Final = web.AppKey("inspector", Inspector)
MAX_BODY: Final = web.AppKey("max_body", int)

Readiness = Callable[[], str | None]
"""None when the control plane can serve config, otherwise a short reason why not (for `/ready`)."""
READINESS: Final[web.AppKey[Readiness]] = web.AppKey("readiness")


@dataclass(frozen=True, slots=True)
class ApiAuth:
    """What the API's auth middleware needs (see `api/auth.py`).

    `dataplane_reads`: per-dataplane inspection reads (`/meshes/{mesh}/dataplanes/{name}/...`) need an admin
    or that dataplane's own token (`--api-read-auth`; on by default with `--dataplane-auth token`).
    """

    tokens: Tokens
    localhost_is_admin: bool = True
    dataplane_reads: bool = False


AUTH: Final = web.AppKey("auth", ApiAuth)
