"""Dataplane: the kind descriptor, validation in Kuma's style (`dataplane_validator.go`, reference
kuma-tracing.md §4.1) and the proxy's identifying service.

Beyond Kuma: addresses must be an IP or a DNS name, and no two inbounds may listen on the same address:port,
because either would make Envoy reject the generated listeners.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from google.protobuf.message import Message

from controlplane.errors import Violation
from controlplane.resources import columns
from controlplane.resources.addresses import is_unspecified_ip, valid_host
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.kind import Column, Document, Item, Kind
from controlplane.resources.paths import field, index, key
from controlplane.resources.tags import PROTOCOL_TAG, PROTOCOLS, SERVICE_TAG, validate_tags

UNKNOWN_SERVICE: Final = "unknown"

_PORT_MESSAGE = "port must be in the range [1, 65535]"


def validate_dataplane(spec: Message) -> list[Violation]:
    assert isinstance(spec, mesh_pb2.Dataplane)
    if not spec.HasField("networking"):
        return [Violation("networking", "must be defined")]
    net = spec.networking
    violations: list[Violation] = []
    if not net.address:
        violations.append(Violation("networking.address", "address can't be empty"))
    else:
        violations.extend(_address_problems(net.address, "networking.address", unspecified_ok=False))
    if not net.inbound:
        violations.append(Violation("networking", "has to contain at least one inbound interface or gateway"))
    used: dict[tuple[str, int], int] = {}
    for i, inbound in enumerate(net.inbound):
        path = index("networking.inbound", i)
        violations.extend(_validate_inbound(inbound, path))
        listen = (inbound.address or net.address, inbound.port)
        if listen in used:
            violations.append(
                Violation(path, f"{listen[0]}:{listen[1]} is already used by networking.inbound[{used[listen]}]")
            )
        used.setdefault(listen, i)
    for i, outbound in enumerate(net.outbound):
        violations.extend(_validate_outbound(outbound, index("networking.outbound", i)))
    return violations


def _address_problems(address: str, path: str, *, unspecified_ok: bool) -> list[Violation]:
    if not valid_host(address):
        return [Violation(path, "address has to be valid IP address or domain name")]
    if not unspecified_ok and is_unspecified_ip(address):
        return [Violation(path, "must not be 0.0.0.0 or ::")]
    return []


def _validate_inbound(inbound: mesh_pb2.Dataplane.Networking.Inbound, path: str) -> list[Violation]:
    violations: list[Violation] = []
    if not 1 <= inbound.port <= 65535:
        violations.append(Violation(field(path, "port"), _PORT_MESSAGE))
    if inbound.service_port > 65535:
        violations.append(Violation(field(path, "servicePort"), _PORT_MESSAGE))
    if inbound.address:
        violations.extend(_address_problems(inbound.address, field(path, "address"), unspecified_ok=True))
    if inbound.service_address:
        violations.extend(
            _address_problems(inbound.service_address, field(path, "serviceAddress"), unspecified_ok=False)
        )
    tags_path = field(path, "tags")
    tags = dict(inbound.tags)
    if SERVICE_TAG not in tags:
        violations.append(Violation(key(tags_path, SERVICE_TAG), "tag has to exist"))
    protocol = tags.get(PROTOCOL_TAG)
    if protocol is not None and protocol.lower() not in PROTOCOLS:
        violations.append(
            Violation(
                key(tags_path, PROTOCOL_TAG),
                f'tag "{PROTOCOL_TAG}" has an invalid value "{protocol}". Allowed values: {", ".join(PROTOCOLS)}',
            )
        )
    violations.extend(validate_tags(tags, tags_path))
    return violations


def _validate_outbound(outbound: mesh_pb2.Dataplane.Networking.Outbound, path: str) -> list[Violation]:
    violations: list[Violation] = []
    if not 1 <= outbound.port <= 65535:
        violations.append(Violation(field(path, "port"), _PORT_MESSAGE))
    if outbound.address:
        violations.extend(_address_problems(outbound.address, field(path, "address"), unspecified_ok=True))
    tags = dict(outbound.tags)
    if not tags.get(SERVICE_TAG):
        violations.append(Violation(field(path, "tags"), f'mandatory tag "{SERVICE_TAG}" is missing'))
    violations.extend(validate_tags(tags, field(path, "tags")))
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
