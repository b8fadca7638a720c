"""The runner's end of the Envoy admin tunnel (protos/admin_tunnel.proto): answer the control plane's
read-only requests from the Envoy's loopback admin, so the admin interface never listens beyond loopback.

Responsible for: keeping one `Connect` stream to the control plane's gRPC address open (the ADS address,
TLS and dataplane token as for Envoy's own ADS stream), re-opening it with back-off when it breaks and
remembering why (`last_error`, which the ADS watch quotes when Envoy cannot connect either), and answering
each request by one fixed admin GET: `CONFIG_DUMP` → `/config_dump?include_eds`, `STATS` → `/stats`,
`CLUSTERS` → `/clusters`. Nothing else is ever forwarded, whatever the control plane sends. The config
dump is redacted first: it contains the bootstrap, whose gRPC services carry the dataplane token
(`initial_metadata` `authorization`), and an API reader must never learn it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import grpc
import structlog

from controlplane.resources.generated import admin_tunnel_pb2

log = structlog.get_logger(__name__)

CONNECT_METHOD: Final = "/controlplane.admin.v1.EnvoyAdminTunnel/Connect"
ADMIN_PATHS: Final = {admin_tunnel_pb2.CONFIG_DUMP: "/config_dump?include_eds",
                      admin_tunnel_pb2.STATS: "/stats", admin_tunnel_pb2.CLUSTERS: "/clusters"}
CHUNK_BYTES: Final = 512 * 1024
REDACTED: Final = "[redacted]"
SENSITIVE_HEADERS: Final = frozenset({"authorization"})
BACKOFF_MIN_S: Final = 0.25
BACKOFF_MAX_S: Final = 5.0
ADMIN_TIMEOUT_S: Final = 10.0


def redact_config_dump(body: bytes) -> bytes:
    """The dump with every header value named `authorization` replaced (`initial_metadata`, header lists)."""
    dump = json.loads(body)
    _redact(dump)
    return json.dumps(dump, indent=1).encode()


def _redact(value: Any) -> None:
    if isinstance(value, dict):
        if str(value.get("key", "")).lower() in SENSITIVE_HEADERS and "value" in value:
            value["value"] = REDACTED
        for item in value.values():
            _redact(item)
    elif isinstance(value, list):
        for item in value:
            _redact(item)


@dataclass
class TunnelClient:
    """One runner's tunnel; `run` until cancelled."""

    target: str
    """`host:port` of the control plane's gRPC server (`[v6]:port` for IPv6)."""
    node_id: str
    admin_url: str
    token: str | None = None
    ca_cert_pem: str | None = None
    last_error: str | None = None
    open: bool = False

    async def run(self) -> None:
        backoff = BACKOFF_MIN_S
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ADMIN_TIMEOUT_S)) as admin:
            while True:
                try:
                    await self._session(admin)
                    self.last_error = "the control plane closed the admin tunnel"
                except grpc.aio.AioRpcError as exc:
                    self.last_error = f"{exc.code().name}: {exc.details()}"
                finally:
                    if self.open:
                        log.info("admin_tunnel_lost", node_id=self.node_id, reason=self.last_error)
                    self.open = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _session(self, admin: aiohttp.ClientSession) -> None:
        metadata = (("authorization", f"Bearer {self.token}"),) if self.token else ()
        async with self._channel() as channel:
            connect = channel.stream_stream(CONNECT_METHOD, request_serializer=admin_tunnel_pb2.TunnelUp.SerializeToString,
                                            response_deserializer=admin_tunnel_pb2.TunnelDown.FromString)
            call = connect(metadata=metadata)
            await call.write(admin_tunnel_pb2.TunnelUp(hello=admin_tunnel_pb2.Hello(node_id=self.node_id)))
            self.open, self.last_error = True, None
            log.debug("admin_tunnel_open", node_id=self.node_id, target=self.target)
            async for down in call:
                async for chunk in self._answer(admin, down.request):
                    await call.write(admin_tunnel_pb2.TunnelUp(response=chunk))

    def _channel(self) -> grpc.aio.Channel:
        if self.ca_cert_pem is None:
            return grpc.aio.insecure_channel(self.target)
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca_cert_pem.encode())
        return grpc.aio.secure_channel(self.target, credentials)

    async def _answer(self, admin: aiohttp.ClientSession,
                      request: admin_tunnel_pb2.AdminRequest) -> AsyncIterator[admin_tunnel_pb2.AdminResponse]:
        path = ADMIN_PATHS.get(request.view)
        if path is None:
            yield admin_tunnel_pb2.AdminResponse(id=request.id, last=True, error=f"unknown view {request.view}")
            return
        try:
            async with admin.get(self.admin_url + path) as response:
                status, content_type, body = response.status, response.content_type, await response.read()
            if request.view == admin_tunnel_pb2.CONFIG_DUMP and status == 200:
                body = redact_config_dump(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            yield admin_tunnel_pb2.AdminResponse(id=request.id, last=True, error=f"{type(exc).__name__}: {exc}")
            return
        for start in range(0, max(len(body), 1), CHUNK_BYTES):
            last = start + CHUNK_BYTES >= len(body)
            yield admin_tunnel_pb2.AdminResponse(id=request.id, status=status, content_type=content_type,
                                                 chunk=body[start:start + CHUNK_BYTES], last=last)
