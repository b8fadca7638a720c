"""A raw ADS test client (SotW or delta) built from the xds-protos stubs.

A background task reads the stream into a queue, so a test can wait for "the next message" with a
deadline without cancelling a gRPC read (which would end the call). Every response is checked against the
protocol invariants: nonce strictly increasing per stream, version set, the type URL of every packed
resource equal to the response's, and no resource name twice in one response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2
from xds_resources import resource_name

RECV_TIMEOUT = 5.0
SILENCE = 1.0


class StreamEnded(Exception):
    def __init__(self, code: grpc.StatusCode | None, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


class AdsClient:
    """One ADS stream. `delta=True` uses DeltaAggregatedResources."""

    def __init__(self, channel: grpc.aio.Channel, node_id: str | None, *, delta: bool = False,
                 metadata: tuple[tuple[str, str], ...] | None = None) -> None:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        self.delta = delta
        self.node_id = node_id
        method = stub.DeltaAggregatedResources if delta else stub.StreamAggregatedResources
        self._call = method(metadata=metadata)
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())
        self._node_sent = False
        self._last_nonce = 0
        self.received: list[Any] = []

    async def _read(self) -> None:
        try:
            async for response in self._call:
                self._queue.put_nowait(response)
        except grpc.aio.AioRpcError as exc:
            self._queue.put_nowait(StreamEnded(exc.code(), exc.details() or ""))
            return
        self._queue.put_nowait(StreamEnded(None, "stream closed by server"))

    def _node(self) -> base_pb2.Node | None:
        if self._node_sent or self.node_id is None:
            return None
        self._node_sent = True  # like Envoy's set_node_on_first_message_only
        return base_pb2.Node(id=self.node_id, cluster="test")

    async def request(self, type_url: str, names: list[str] | tuple[str, ...] = (), *, version: str = "",
                      nonce: str = "", error: str = "") -> None:
        """SotW DiscoveryRequest."""
        request = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names),
                                                 version_info=version, response_nonce=nonce)
        if error:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        node = self._node()
        if node is not None:
            request.node.CopyFrom(node)
        await self._call.write(request)

    async def ack(self, response: discovery_pb2.DiscoveryResponse, names: list[str] | tuple[str, ...] = ()) -> None:
        await self.request(response.type_url, names, version=response.version_info, nonce=response.nonce)

    async def nack(self, response: discovery_pb2.DiscoveryResponse, *, version: str = "",
                   names: list[str] | tuple[str, ...] = (), error: str = "bad config") -> None:
        await self.request(response.type_url, names, version=version, nonce=response.nonce, error=error)

    async def delta_request(self, type_url: str, *, subscribe: tuple[str, ...] = (),
                            unsubscribe: tuple[str, ...] = (), nonce: str = "", error: str = "",
                            initial: dict[str, str] | None = None) -> None:
        request = discovery_pb2.DeltaDiscoveryRequest(
            type_url=type_url, resource_names_subscribe=list(subscribe),
            resource_names_unsubscribe=list(unsubscribe), response_nonce=nonce,
            initial_resource_versions=initial or {},
        )
        if error:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        node = self._node()
        if node is not None:
            request.node.CopyFrom(node)
        await self._call.write(request)

    async def recv(self, timeout: float = RECV_TIMEOUT) -> Any:
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if isinstance(item, StreamEnded):
            raise item
        self._check_invariants(item)
        self.received.append(item)
        return item

    async def expect_silence(self, timeout: float = SILENCE) -> None:
        """Nothing arrives within `timeout` ("never respond more than necessary")."""
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return
        raise AssertionError(f"expected no message, got {item}")

    async def ended(self, timeout: float = RECV_TIMEOUT) -> StreamEnded:
        item = await asyncio.wait_for(self._queue.get(), timeout)
        assert isinstance(item, StreamEnded), f"expected the stream to end, got {item}"
        return item

    def _check_invariants(self, response: Any) -> None:
        nonce = int(response.nonce)
        assert nonce > self._last_nonce, f"nonce {nonce} not after {self._last_nonce}"
        self._last_nonce = nonce
        assert response.type_url
        if self.delta:
            assert response.system_version_info
            packed = [resource.resource for resource in response.resources]
            names = [resource.name for resource in response.resources]
            assert all(resource.version for resource in response.resources)
            assert not set(names) & set(response.removed_resources)
        else:
            assert response.version_info
            packed = list(response.resources)
            names = [resource_name(item) for item in packed] if packed else []
        assert all(item.type_url == response.type_url for item in packed)
        assert len(names) == len(set(names)), f"duplicate names in {names}"

    async def close(self) -> None:
        self._call.cancel()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


def names_of(response: Any) -> list[str]:
    """Resource names of a SotW or delta response, in order."""
    if isinstance(response, discovery_pb2.DeltaDiscoveryResponse):
        return [resource.name for resource in response.resources]
    return [resource_name(item) for item in response.resources]


ClientFactory = Callable[..., AdsClient]
