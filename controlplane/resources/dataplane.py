"""Dataplane: the kind descriptor, validation in Kuma's style (`dataplane_validator.go`, reference
kuma-tracing.md §4.1) and the proxy's identifying service.

Validation is Kuma's, message for message and in Kuma's order (the inbound-or-gateway check, the address,
then per inbound: port, servicePort, serviceAddress, address, protocol, tags, and `tag has to exist` last;
then per outbound). Beyond Kuma, each because Envoy would otherwise reject the generated listeners or
clusters (README, "Differences from Kuma"): `networking.address` must be an IP address (Kuma also takes a
domain name and resolves it; nothing here resolves names, and a listener cannot bind one), a serviceAddress
must not be 0.0.0.0 or ::, and no two inbounds may listen on the same address:port.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from google.protobuf.message import Message

from controlplane.errors import Violation
from controlplane.resources import columns
from controlplane.resources.addresses import is_ip, is_unspecified_ip
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.kind import Column, Document, Item, Kind
from controlplane.resources.paths import field, index, key
from controlplane.resources.tags import SERVICE_TAG, validate_protocol, validate_tags

UNKNOWN_SERVICE: Final = "unknown"

_PORT_MESSAGE: Final = "port must be in the range [1, 65535]"
_NOT_IP: Final = "address has to be valid IP address"
_SERVICE_ADDRESS_NOT_IP: Final = "serviceAddress has to be valid IP address"
_SAME_AS_LISTENER: Final = "serviceAddress and servicePort has to differ from address and port"
_UNSPECIFIED: Final = "must not be 0.0.0.0 or ::"

Inbound = mesh_pb2.Dataplane.Networking.Inbound
Outbound = mesh_pb2.Dataplane.Networking.Outbound


def validate_dataplane(spec: Message) -> list[Violation]:
    assert isinstance(spec, mesh_pb2.Dataplane)
    if not spec.HasField("networking"):
        return [Violation("networking", "must be defined")]
    net = spec.networking
    violations: list[Violation] = []
    if not net.inbound:
        violations.append(Violation("networking", "has to contain at least one inbound interface or gateway"))
    violations.extend(_validate_address(net.address))
    used: dict[tuple[str, int], int] = {}
    for i, inbound in enumerate(net.inbound):
        path = index("networking.inbound", i)
        violations.extend(_validate_inbound(inbound, path, net.address))
        if SERVICE_TAG not in inbound.tags:
            violations.append(Violation(key(field(path, "tags"), SERVICE_TAG), "tag has to exist"))
        listen = (inbound.address or net.address, inbound.port)
        if listen in used:
            violations.append(
                Violation(path, f"{listen[0]}:{listen[1]} is already used by networking.inbound[{used[listen]}]")
            )
        used.setdefault(listen, i)
    for i, outbound in enumerate(net.outbound):
        violations.extend(_validate_outbound(outbound, index("networking.outbound", i)))
    return violations


def _validate_address(address: str) -> list[Violation]:
    """Kuma's `validateAddress`, except that a domain name is refused like any other non-IP."""
    path = "networking.address"
    if not address:
        return [Violation(path, "address can't be empty")]
    if is_unspecified_ip(address):
        return [Violation(path, _UNSPECIFIED)]
    return [] if is_ip(address) else [Violation(path, _NOT_IP)]


def _validate_inbound(inbound: Inbound, path: str, dataplane_address: str) -> list[Violation]:
    violations: list[Violation] = []
    if not 1 <= inbound.port <= 65535:
        violations.append(Violation(field(path, "port"), _PORT_MESSAGE))
    if inbound.service_port > 65535:
        violations.append(Violation(field(path, "servicePort"), _PORT_MESSAGE))
    # Kuma compares serviceAddress with networking.address, then with the inbound's own address; when all
    # three are equal it reports the overlap twice, and so do we (its tests compare the whole list).
    same_port = inbound.service_port in (0, inbound.port)
    service_path = field(path, "serviceAddress")
    if inbound.service_address:
        if not is_ip(inbound.service_address):
            violations.append(Violation(service_path, _SERVICE_ADDRESS_NOT_IP))
        elif is_unspecified_ip(inbound.service_address):
            violations.append(Violation(service_path, _UNSPECIFIED))
        if inbound.service_address == dataplane_address and same_port:
            violations.append(Violation(service_path, _SAME_AS_LISTENER))
    if inbound.address:
        if not is_ip(inbound.address):
            violations.append(Violation(field(path, "address"), _NOT_IP))
        if inbound.address == inbound.service_address and same_port:
            violations.append(Violation(service_path, _SAME_AS_LISTENER))
    tags_path = field(path, "tags")
    violations.extend(validate_protocol(inbound.tags, tags_path))
    violations.extend(validate_tags(inbound.tags, tags_path))
    return violations


def _validate_outbound(outbound: Outbound, path: str) -> list[Violation]:
    violations: list[Violation] = []
    if not 1 <= outbound.port <= 65535:
        violations.append(Violation(field(path, "port"), _PORT_MESSAGE))
    if outbound.address and not is_ip(outbound.address):
        violations.append(Violation(field(path, "address"), _NOT_IP))
    tags_path = field(path, "tags")
    if not outbound.tags:
        violations.append(Violation(tags_path, f'mandatory tag "{SERVICE_TAG}" is missing'))
    else:
        violations.extend(validate_tags(outbound.tags, tags_path, require_service=True))
    return violations


def identifying_service(spec: mesh_pb2.Dataplane) -> str:
    """Alphabetically first `kuma.io/service` of the inbounds, `unknown` if none (Kuma's
    GetIdentifyingService). Feeds `node.cluster` in the bootstrap (zipkin's local service name) and the
    service name of outbound tracing (Datadog's service), so both always agree."""
    services = sorted(i.tags[SERVICE_TAG] for i in spec.networking.inbound if i.tags.get(SERVICE_TAG))
    return services[0] if services else UNKNOWN_SERVICE


def canonicalize_dataplane(spec: Document) -> None:
    """Tags come out in storage order, which differs between stores; sort them."""
    networking = spec.get("networking")
    if not isinstance(networking, dict):
        return
    for direction in ("inbound", "outbound"):
        listeners = networking.get(direction)
        for listener in listeners if isinstance(listeners, list) else []:
            if isinstance(listener, dict) and isinstance(listener.get("tags"), dict):
                listener["tags"] = dict(sorted(listener["tags"].items()))


def tags_column(item: Item, now: datetime) -> str:
    """kumactl's TAGS (`TagSet().String()`): every inbound's tags, a tag's distinct values sorted and joined
    with commas (`kuma.io/service=metrics,mobile version=v1`)."""
    networking = item.get("networking")
    inbound = networking.get("inbound", []) if isinstance(networking, dict) else []
    tags: dict[str, set[str]] = {}
    for i in inbound if isinstance(inbound, list) else []:
        for name, value in (i.get("tags") or {}).items() if isinstance(i, dict) else ():
            tags.setdefault(str(name), set()).add(str(value))
    return " ".join(f"{k}={','.join(sorted(v))}" for k, v in sorted(tags.items()))


def address_column(item: Item, now: datetime) -> str:
    """kumactl's ADDRESS: the advertised address if any (this control plane has none), else the address."""
    networking = item.get("networking")
    return str(networking.get("address", "")) if isinstance(networking, dict) else ""


DATAPLANE: Final = Kind(
    name="Dataplane",
    ws_path="dataplanes",
    singular="dataplane",
    plural="dataplanes",
    mesh_scoped=True,
    spec_type=mesh_pb2.Dataplane,
    validate=validate_dataplane,
    columns=(columns.MESH, columns.NAME, Column("TAGS", tags_column), Column("ADDRESS", address_column),
             columns.AGE),
    canonicalize=canonicalize_dataplane,
)
