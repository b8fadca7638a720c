"""The tracing-backend seam: what one backend type (zipkin, datadog, ...) must provide, and the values that
cross it.

A backend type is one module (`tracing/zipkin.py`, `tracing/datadog.py`) with one object implementing
`BackendType`: it parses and validates its `conf` once into a typed, immutable `CollectorConf`, builds the
collector cluster, builds the HCM tracing provider for one listener (service name and direction given),
and says which clusters a provider it generated references (the snapshot's consistency check). Everything
else (policies choosing a backend, listeners carrying the block, the snapshot) is generic over this
protocol, so no module outside a backend's own names zipkin or datadog. Modelled on Kuma's typed per-backend
configurers (`pkg/plugins/policies/meshtrace/plugin/xds/configurer.go`).

Values here are frozen and hashable on purpose: an `EffectiveTracing` is part of the content key under which
generated listeners are cached (xds/entries.py), and part of what the reconciler compares to decide which
proxies a policy change affects. Pure: no I/O, no logging.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from envoy.config.cluster.v3 import cluster_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message

from controlplane.errors import Violation


class Direction(enum.Enum):
    """Traffic direction of the HCM a block is for; Datadog's splitService names spans by it."""

    UNSPECIFIED = "unspecified"
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True, slots=True)
class HcmSite:
    """Where a tracing block goes: the service the spans are reported under, the direction, and for
    outbounds the destination service (reference kuma-tracing.md §3.1)."""

    service: str
    direction: Direction
    destination: str = ""


class CollectorConf:
    """Base of every backend's typed conf (frozen dataclasses, so they compare and hash by value)."""

    __slots__ = ()


class BackendType(Protocol):
    """One tracing backend type. Implementations are stateless singletons registered in `registry.py`."""

    @property
    def type_name(self) -> str:
        """The Mesh backend `type` (`zipkin`), also used in messages."""
        ...

    @property
    def tracer_name(self) -> str:
        """Envoy's provider name (`envoy.tracers.zipkin`, Kuma >= 2.2)."""
        ...

    def cluster(self, name: str, conf: CollectorConf, *, ipv6_dataplane: bool) -> cluster_pb2.Cluster:
        """The collector cluster `name` for `conf`."""
        ...

    def provider(self, cluster: str, conf: CollectorConf, site: HcmSite) -> Message:
        """The provider's typed config for one HCM (packed into `tracing.provider.typed_config`)."""
        ...

    def site_key(self, conf: CollectorConf, site: HcmSite) -> Hashable:
        """The parts of `site` the provider depends on: equal keys give byte-identical providers, so one
        listener can be shared by every proxy with the same key (zipkin: none; datadog: its service name)."""
        ...

    def referenced_clusters(self, typed_config: any_pb2.Any) -> tuple[str, ...]:
        """Clusters a provider of this type references (its collector), for the consistency check."""
        ...


class MeshBackendType(BackendType, Protocol):
    """A backend type a Mesh can declare (`tracing.backends[].type`, the TrafficTrace era: zipkin and
    datadog); MeshTrace's backends are parsed by its plugin into the same typed confs."""

    @property
    def mesh_conf_fields(self) -> tuple[str, ...]:
        """JSON names of the Mesh backend `conf` fields (the docs' short form may put them beside `type`)."""
        ...

    def parse_mesh_conf(self, conf: Mapping[str, object], path: str) -> tuple[CollectorConf | None, list[Violation]]:
        """A Mesh `tracing.backends[i].conf` → typed conf, or None with every violation (Kuma's paths under
        `path`, which is `tracing.backends[i].config`). The only parse of a conf: validation and generation
        both call this."""
        ...


@dataclass(frozen=True, slots=True)
class Backend:
    """A backend resolved for a proxy: its type, its parsed conf, the collector cluster's name, and the name
    the policy knows it by (a Mesh backend name for TrafficTrace)."""

    type: BackendType
    conf: CollectorConf
    cluster: str
    name: str

    @property
    def type_name(self) -> str:
        return self.type.type_name


@dataclass(frozen=True, slots=True)
class Sampling:
    """Envoy's three HCM sampling percentages; None leaves a field unset (Envoy's default is 100)."""

    overall: float | None = None
    client: float | None = None
    random: float | None = None


@dataclass(frozen=True, slots=True)
class CustomTag:
    """A span tag: a literal value, or a request header with a default (MeshTrace `tags`)."""

    tag: str
    literal: str | None = None
    header: str | None = None
    default: str = ""


@dataclass(frozen=True, slots=True)
class EffectiveTracing:
    """What a proxy's HCMs trace with: the policy plugins' common output and the generators' input."""

    backend: Backend
    sampling: Sampling = Sampling()
    tags: tuple[CustomTag, ...] = ()
    service_per_inbound: bool = True
    """An inbound's spans are reported under the inbound's own service (TrafficTrace, Kuma's tracing
    configurer); False: under the proxy's identifying service on every listener (MeshTrace's plugin)."""
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        # Hashed for every listener of every proxy (block keys, generator inputs): compute it once.
        object.__setattr__(self, "_hash", hash((self.backend, self.sampling, self.tags, self.service_per_inbound)))

    def __hash__(self) -> int:
        return self._hash

    def block_key(self, site: HcmSite) -> Hashable:
        """Content key of `block(site)`: equal keys give byte-identical blocks."""
        return (self, self.backend.type.site_key(self.backend.conf, site))
