"""Hostile clients against a real `controlplane run` child process (issue 11 §1 SO_REUSEPORT, §2 "Pre-auth
memory", §2 "Idle connections").

- A second control plane on the same ADS port fails to bind; the first keeps serving.
- Hostile requests (one 60 MB DiscoveryRequest, eight at once, then a burst just under the receive cap that
  breaks the name limits) end with RESOURCE_EXHAUSTED and leave resident memory near where it was; the API
  keeps answering meanwhile. RSS, peak RSS and API latency are printed (`-s`).
- With RLIMIT_NOFILE lowered to 256 in the child, 300 silent TCP connections to ADS (and then to both
  ports) do not stop the API or ADS from answering, and all of them are closed; the child's descriptors
  and the API's latency are printed. With a soft limit below the hard one, the control plane raises it.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

from controlplane.xds.types import CLUSTER_TYPE, ENDPOINT_TYPE

from .support.plane import HOST, MESH, Api
from .support.process import ControlPlaneProcess, controlplane_script
from .support.waiting import eventually, free_port

pytestmark = pytest.mark.e2e

DEADLINE_S: Final = 30.0
LOW_FDS: Final = 256
FLOOD: Final = 300
NODE: Final = f"{MESH}.web-1"
METHOD: Final = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
MIB: Final = 1024 * 1024


@asynccontextmanager
async def control_plane(tmp_path: Path, *, soft: int | None = None, hard: int | None = None,
                        name: str = "cp") -> AsyncIterator[ControlPlaneProcess]:
    open_files = (soft, hard) if soft is not None and hard is not None else None
    cp = ControlPlaneProcess("memory", tmp_path / f"{name}.log", open_files=open_files)
    try:
        await cp.start()
        yield cp
    finally:
        cp.stop()


async def apply_web(api: Api) -> None:
    await api.apply(
        {"type": "Mesh", "name": MESH},
        {"type": "Dataplane", "mesh": MESH, "name": "web-1", "networking": {"address": HOST, "inbound": [
            {"port": free_port(), "servicePort": free_port(), "tags": {"kuma.io/service": "web"}}]}},
    )


async def ads_answer_s(port: int, timeout: float = DEADLINE_S) -> float:
    """Seconds until a fresh ADS stream for web-1 gets its CDS response (waiting through refusals)."""
    began = time.monotonic()
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.initial_reconnect_backoff_ms", 200),
               ("grpc.max_reconnect_backoff_ms", 1000)]
    async with grpc.aio.insecure_channel(f"{HOST}:{port}", options=options) as channel:
        call = channel.stream_stream(METHOD, request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
                                     response_deserializer=discovery_pb2.DiscoveryResponse.FromString)(
            wait_for_ready=True, timeout=timeout)
        await call.write(discovery_pb2.DiscoveryRequest(type_url=CLUSTER_TYPE, node=base_pb2.Node(id=NODE)))
        response = await call.read()
        assert response.type_url == CLUSTER_TYPE, response
        call.cancel()
    return time.monotonic() - began


@dataclass
class Sampler:
    """Every 0.1 s: the child's open descriptors and the latency of `GET /ready` (None = no 200 within
    `timeout_s`)."""

    cp: ControlPlaneProcess
    timeout_s: float = 2.0
    fds: list[int] = field(default_factory=list)
    latencies: list[float | None] = field(default_factory=list)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)) as http:
            while True:
                with suppress(OSError):
                    self.fds.append(self.cp.open_fds())
                began = time.monotonic()
                try:
                    async with http.get(f"{self.cp.api_url}/ready") as response:
                        ok = response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                self.latencies.append(time.monotonic() - began if ok else None)
                await asyncio.sleep(0.1)

    def report(self, label: str) -> str:
        answered = [value for value in self.latencies if value is not None]
        p50 = statistics.median(answered) * 1000 if answered else float("nan")
        worst = max(answered) * 1000 if answered else float("nan")
        return (f"{label}: child fds max {max(self.fds, default=0)} (limit {LOW_FDS}); API /ready "
                f"{len(answered)}/{len(self.latencies)} answered, p50 {p50:.1f} ms, max {worst:.1f} ms")


@asynccontextmanager
async def sampling(cp: ControlPlaneProcess, timeout_s: float = 2.0) -> AsyncIterator[Sampler]:
    sampler = Sampler(cp, timeout_s)
    task = asyncio.create_task(sampler.run())
    try:
        yield sampler
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_silent(port: int, count: int) -> list[Connection]:
    """`count` TCP connections that never send a byte (those the kernel cannot even queue are dropped)."""
    async def one() -> Connection | None:
        try:
            return await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
        except (OSError, TimeoutError):
            return None
    opened = await asyncio.gather(*(one() for _ in range(count)))
    return [connection for connection in opened if connection is not None]


async def released(cp: ControlPlaneProcess, connections: list[Connection], baseline_fds: int) -> tuple[float, int]:
    """Wait until the child holds no more descriptors than before the flood; (seconds, how many of the
    connections the server closed). The others never left a full accept queue: Linux gives up on them
    after its SYN-ACK retries without telling a client that never sends anything, so only the server's
    descriptors say whether the flood is gone."""
    began = time.monotonic()
    await eventually(lambda: cp.open_fds() <= baseline_fds + 4, timeout=DEADLINE_S,
                     message=f"the child still holds {cp.open_fds()} descriptors (before the flood: {baseline_fds})")
    seconds = time.monotonic() - began

    async def closed_by_server(reader: asyncio.StreamReader) -> bool:
        try:
            while await asyncio.wait_for(reader.read(65536), 0.01):
                pass  # a refused API connection gets its 503 first
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    try:
        closed = sum([await closed_by_server(reader) for reader, _ in connections])
    finally:
        for _, writer in connections:
            writer.close()
    return seconds, closed


async def test_second_control_plane_on_the_same_ads_port_fails(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as first, aiohttp.ClientSession() as http:
        await apply_web(Api(first.api_url, http))
        second = await asyncio.to_thread(
            subprocess.run,
            [controlplane_script(), "run", "--store", "memory", "--api-port", str(free_port()),
             "--xds-address", HOST, "--xds-port", str(first.xds_port)],
            capture_output=True, text=True, timeout=60,
        )
        assert second.returncode != 0, second.stdout + second.stderr
        # One line naming the port (start-up checks the port before binding, cli/startup.py).
        assert f"cannot listen for the ADS server on {HOST}:{first.xds_port}: Address already in use" in second.stderr
        assert await ads_answer_s(first.xds_port, timeout=10) < 10  # the first one still owns the port


def discovery_request(names: int, name_bytes: int) -> bytes:
    """Wire bytes of a SotW request for web-1 with `names` distinct names of `name_bytes` each (built as
    bytes: a 60 MB message object would cost the test process several times that)."""
    head = discovery_pb2.DiscoveryRequest(type_url=ENDPOINT_TYPE, node=base_pb2.Node(id=NODE)).SerializeToString()
    tag = bytes([0x1A]) + _varint(name_bytes)
    return bytes(head) + b"".join(tag + f"{i:0{name_bytes}d}".encode() for i in range(names))


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


async def send_hostile(port: int, payload: bytes) -> grpc.StatusCode | None:
    """One stream, one raw request; the status the server ends it with (None = still open after 20 s)."""
    async with grpc.aio.insecure_channel(f"{HOST}:{port}", options=[("grpc.max_send_message_length", -1)]) as ch:
        call = ch.stream_stream(METHOD, request_serializer=None,
                                response_deserializer=discovery_pb2.DiscoveryResponse.FromString)()
        try:
            await call.write(payload)
            await asyncio.wait_for(call.read(), 20)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        except TimeoutError:
            return None
        finally:
            call.cancel()
        return grpc.StatusCode.OK


async def test_hostile_requests_leave_memory_bounded(tmp_path: Path) -> None:
    """Unbounded (before): one 60 MB request left ~430 MB resident, eight at once peaked at 2-3 GB."""
    huge = discovery_request(2_000_000, 30)  # ~60 MB
    near_cap = discovery_request(190_000, 20)  # ~4.0 MB: under the receive cap, over the name limit
    assert len(huge) > 60 * MIB and 3.5 * MIB < len(near_cap) < 4 * MIB
    async with control_plane(tmp_path) as cp, aiohttp.ClientSession() as http:
        await apply_web(Api(cp.api_url, http))
        assert await ads_answer_s(cp.xds_port) < DEADLINE_S
        baseline = cp.rss_kib()
        lines = [f"baseline RSS {baseline // 1024} MiB"]
        rounds: list[int] = []
        async with sampling(cp, timeout_s=5.0) as sampler:  # before: no answer for 10 s and more
            for label, payload, count in (("one 60 MB request", huge, 1), ("eight 60 MB requests", huge, 8),
                                          *[(f"eight 4 MB requests over the name limit (round {i + 1})", near_cap, 8)
                                            for i in range(5)]):
                codes = await asyncio.gather(*(send_hostile(cp.xds_port, payload) for _ in range(count)))
                assert set(codes) == {grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
                lines.append(f"after {label}: RSS {cp.rss_kib() // 1024} MiB, peak {cp.peak_rss_kib() // 1024} MiB")
                if payload is near_cap:
                    rounds.append(cp.rss_kib())
        lines.append(sampler.report("during the hostile requests"))
        report = "\n".join(lines)
        print(report)
        assert cp.peak_rss_kib() < baseline + 384 * 1024, report  # unbounded, eight peaked at 2-3 GB
        # RSS does not return exactly to the baseline (glibc keeps freed heap; gRPC reads on its own threads,
        # each with a malloc arena, so what stays resident depends on which threads served the requests):
        # measured 86-132 MiB in 20 local rounds from a 74-79 MiB baseline, and up to 313 MiB in one CI run,
        # never a trend across rounds. The bound is an order of magnitude below the unbounded case; that
        # nothing is kept per refused request is checked exactly, in-process, by tests/xds/test_ads_limits.py.
        assert max(rounds) < baseline + 320 * 1024, report
        assert all(value is not None for value in sampler.latencies), report


async def flood_and_recover(cp: ControlPlaneProcess, ports: list[int], label: str) -> None:
    baseline_fds = cp.open_fds()
    async with sampling(cp) as sampler:
        flood: list[Connection] = []
        for port in ports:
            flood += await open_silent(port, FLOOD)
        began = time.monotonic()

        async def api_ready() -> bool:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http, \
                    http.get(f"{cp.api_url}/ready") as response:
                return response.status == 200

        await eventually(api_ready, timeout=DEADLINE_S, message=f"{label}: the API stopped answering")
        api_s = time.monotonic() - began
        ads_s = await ads_answer_s(cp.xds_port)
        released_s, closed = await released(cp, flood, baseline_fds)
        assert cp.process is not None and cp.process.poll() is None, cp.log()
    print(f"{label}: {len(flood)} silent connections; API answered after {api_s:.2f} s, a new ADS stream "
          f"after {ads_s:.2f} s, the flood's descriptors released {released_s:.2f} s later ({closed} closed by "
          f"the server, {len(flood) - closed} never accepted)\n  {sampler.report(label)}")


async def test_silent_connections_do_not_exhaust_descriptors(tmp_path: Path) -> None:
    """Before: 1 100 silent connections against 1 024 descriptors stopped ADS and the API for ~2 min."""
    async with control_plane(tmp_path, soft=LOW_FDS, hard=LOW_FDS) as cp, aiohttp.ClientSession() as http:
        await apply_web(Api(cp.api_url, http))
        assert await ads_answer_s(cp.xds_port) < DEADLINE_S
        await flood_and_recover(cp, [cp.xds_port], "ADS flooded")
        await flood_and_recover(cp, [cp.xds_port, cp.api_port], "ADS and API flooded")
        assert "Traceback" not in cp.log()


async def test_soft_descriptor_limit_raised_at_start(tmp_path: Path) -> None:
    """The issue's 1 100 silent connections against a soft limit of 256 (hard 4 096): raised, no refusal."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4096:
        pytest.skip(f"the hard RLIMIT_NOFILE here is {hard}")
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))  # this test holds 1 100 sockets
    async with control_plane(tmp_path, soft=LOW_FDS, hard=4096) as cp, aiohttp.ClientSession() as http:
        assert cp.open_files_limit() == (4096, 4096)
        assert "open_files_limit_raised" in cp.log()
        await apply_web(Api(cp.api_url, http))
        baseline_fds = cp.open_fds()
        flood = await open_silent(cp.xds_port, 1_100)
        try:
            assert len(flood) == 1_100
            async with sampling(cp) as sampler:
                ads_s = await ads_answer_s(cp.xds_port)
                await eventually(lambda: len(sampler.latencies) >= 5, timeout=DEADLINE_S, message="no samples")
            print(f"1 100 silent connections, soft limit raised to 4096: a new ADS stream answered after "
                  f"{ads_s:.2f} s\n  {sampler.report('raised limit')}")
            assert all(value is not None for value in sampler.latencies)
        finally:
            await released(cp, flood, baseline_fds)

