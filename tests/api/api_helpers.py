"""Client-side helpers for the API tests: the `Api` handle, store snapshots and timestamp checks.

Lives outside conftest.py so test modules can import it (conftest modules are not meant to be imported).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from controlplane.resources.codec import encode_resource
from controlplane.resources.registry import KINDS
from controlplane.store.base import Store

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
TIMESTAMPS = ("creationTime", "modificationTime")


@dataclass
class Reply:
    status: int
    body: Any


@dataclass
class Api:
    """A running API server plus the store behind it (tests inspect the store directly)."""

    base: str
    store: Store
    session: aiohttp.ClientSession

    async def request(self, method: str, path: str, body: object = None, *, raw: bytes | None = None) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        async with self.session.request(method, self.base + path, data=data, headers=headers) as resp:
            text = await resp.text()
            try:
                parsed: Any = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return Reply(resp.status, parsed)

    async def get(self, path: str) -> Reply:
        return await self.request("GET", path)

    async def put(self, path: str, body: object = None, *, raw: bytes | None = None) -> Reply:
        return await self.request("PUT", path, body, raw=raw)

    async def delete(self, path: str) -> Reply:
        return await self.request("DELETE", path)

    async def snapshot(self) -> dict[str, list[dict[str, object]]]:
        """Every stored resource of every kind, timestamps included, straight from the store."""
        out: dict[str, list[dict[str, object]]] = {}
        for kind in KINDS:
            page = await self.store.list(kind)
            out[kind.value] = [encode_resource(r) for r in page.items]
        return out


def strip_times(doc: dict[str, Any]) -> dict[str, Any]:
    """Check both timestamps are RFC 3339 UTC (`...Z`), then drop them so bodies compare whole."""
    for key in TIMESTAMPS:
        assert RFC3339_UTC.match(doc[key]), f"{key}={doc[key]!r} is not RFC 3339 UTC"
    return {k: v for k, v in doc.items() if k not in TIMESTAMPS}


def parse_time(value: str) -> datetime:
    """An API timestamp as an aware datetime (string comparison breaks when microseconds are zero)."""
    return datetime.fromisoformat(value)
