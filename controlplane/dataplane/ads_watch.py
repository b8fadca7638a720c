"""Tell the operator of `controlplane dataplane run` whether its Envoy reached the control plane's ADS server.

Envoy itself says little: it logs a failing ADS stream at debug level for its first 30 s, and at warning
only after that. So the runner watches Envoy's own `control_plane.connected_state` gauge (admin, loopback)
and logs "connected to ADS at HOST:PORT" when the stream is up, and, when it is not up `REPORT_AFTER_S`
after Envoy started or after it was lost, "cannot reach ADS at HOST:PORT: <reason>" once per outage. The
reason comes from the runner's own attempts on the same address: a TCP connection (connection refused, a
name that does not resolve, a time-out), or when that succeeds, the status the control plane gave the admin
tunnel, which presents the same token (e.g. "UNAUTHENTICATED: dataplane token rejected: ...").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Final

import aiohttp
import structlog

from controlplane.dataplane.admin_tunnel import TunnelClient

REPORT_AFTER_S: Final = 2.5
POLL_S: Final = 0.5
PROBE_TIMEOUT_S: Final = 1.0
CONNECTED_STAT: Final = "control_plane.connected_state"


class AdsWatch:
    def __init__(self, admin_url: str, host: str, port: int, logger: structlog.typing.FilteringBoundLogger,
                 tunnel: TunnelClient | None = None, *, report_after_s: float = REPORT_AFTER_S,
                 poll_s: float = POLL_S) -> None:
        self._admin_url, self._host, self._port = admin_url, host, port
        self._log, self._tunnel = logger, tunnel
        self._report_after_s, self._poll_s = report_after_s, poll_s
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        connected, reported, since = False, False, loop.time()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as admin:
            while True:
                state = await self._connected(admin)
                if state and not connected:
                    self._log.info("ads_connected", message=f"connected to ADS at {self.address}")
                    connected = True
                elif not state:
                    if connected:
                        self._log.warning("ads_disconnected", message=f"lost the ADS stream to {self.address}")
                        connected, reported, since = False, False, loop.time()
                    if not reported and loop.time() - since >= self._report_after_s:
                        reason = await self.reason()
                        self._log.warning("ads_unreachable", message=f"cannot reach ADS at {self.address}: {reason}")
                        reported = True
                await asyncio.sleep(self._poll_s)

    async def _connected(self, admin: aiohttp.ClientSession) -> bool:
        try:
            async with admin.get(f"{self._admin_url}/stats", params={"filter": f"^{CONNECTED_STAT}$"}) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return False
        return any(line.strip() == f"{CONNECTED_STAT}: 1" for line in text.splitlines())

    async def reason(self) -> str:
        """Why Envoy is not connected, as far as the runner can tell."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                _, writer = await asyncio.open_connection(self._host, self._port)
        except TimeoutError:
            return f"no answer within {PROBE_TIMEOUT_S:.0f}s"
        except socket.gaierror as exc:
            return f"cannot resolve {self._host}: {exc.strerror}"
        except OSError as exc:  # asyncio words it "Connect call failed (...)": the errno says it plainly
            return (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        if self._tunnel is not None and self._tunnel.last_error:
            return f"the control plane refuses this dataplane's streams ({self._tunnel.last_error})"
        return "the port accepts connections but Envoy's ADS stream is not up (see Envoy's log)"
