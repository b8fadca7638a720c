"""Listener builder and its configurers (STYLE §4.2; Kuma's `listener_builder.go` + `*_configurer.go`).

Each configurer sets one aspect of the Listener. Network filter payloads (HCM, tcp_proxy) arrive fully
built and are packed into Any exactly once, in `network_filter`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message

from controlplane.xds import types

ListenerConfigurer = Callable[[listener_pb2.Listener], None]

KUMA_TAGS_METADATA = "io.kuma.tags"
INBOUND = base_pb2.INBOUND
OUTBOUND = base_pb2.OUTBOUND


def build_listener(name: str, *configurers: ListenerConfigurer) -> listener_pb2.Listener:
    """Create a Listener, apply configurers in order, and check that Envoy would accept its shape."""
    listener = listener_pb2.Listener(name=name)
    for configure in configurers:
        configure(listener)
    if not listener.HasField("address"):
        raise ValueError(f"listener {name!r} has no address")
    if not listener.filter_chains:
        raise ValueError(f"listener {name!r} has no filter chain")
    return listener


def socket_address(address: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=address, port_value=port))


def listen_on(address: str, port: int) -> ListenerConfigurer:
    def configure(listener: listener_pb2.Listener) -> None:
        listener.address.CopyFrom(socket_address(address, port))

    return configure


def traffic_direction(direction: int) -> ListenerConfigurer:
    def configure(listener: listener_pb2.Listener) -> None:
        listener.traffic_direction = direction

    return configure


def tags_metadata(tags: Mapping[str, str]) -> ListenerConfigurer:
    """Inbound tags under `io.kuma.tags`, as Kuma does, so config_dump shows which inbound a listener serves."""

    def configure(listener: listener_pb2.Listener) -> None:
        listener.metadata.filter_metadata[KUMA_TAGS_METADATA].update(dict(sorted(tags.items())))

    return configure


def filter_chain(*filters: listener_components_pb2.Filter) -> ListenerConfigurer:
    def configure(listener: listener_pb2.Listener) -> None:
        listener.filter_chains.add().filters.extend(filters)

    return configure


def network_filter(name: str, config: Message) -> listener_components_pb2.Filter:
    """Pack a completely built filter config into Any (the one pack per filter)."""
    packed = any_pb2.Any()
    packed.Pack(config)
    return listener_components_pb2.Filter(name=name, typed_config=packed)


def tcp_proxy_filter(stat_prefix: str, cluster: str) -> listener_components_pb2.Filter:
    """Plain TCP forwarding for tcp/kafka/unknown protocols; no HTTP means no tracing (§3.1)."""
    return network_filter(types.TCP_PROXY, tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix, cluster=cluster))
