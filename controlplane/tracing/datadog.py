"""Datadog tracing backend: the Mesh `type: datadog` conf, its agent cluster and `envoy.tracers.datadog`.

Validation is Kuma's (reference kuma-tracing.md §1.2: `address` cannot be empty, `port` in [1, 65535]),
plus an address Envoy can resolve (IP or DNS name). The provider is Kuma's (§3.2): the collector cluster and
`service_name`, which with `splitService` becomes `<svc>_INBOUND` / `<svc>_OUTBOUND_<destination>` (Kuma
>= 2.0) and stays the plain service for an unspecified direction (gateways). The agent is plaintext.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.trace.v3 import datadog_pb2
from google.protobuf import any_pb2

from controlplane.errors import Violation
from controlplane.resources.addresses import valid_host
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.paths import field
from controlplane.resources.schema import json_field_names
from controlplane.tracing.backend import CollectorConf, Direction, HcmSite
from controlplane.tracing.conf import read_struct
from controlplane.xds.generate.clusters import build_cluster, provided_endpoint

TYPE: Final = "datadog"
TRACER: Final = "envoy.tracers.datadog"


@dataclass(frozen=True, slots=True)
class DatadogConf(CollectorConf):
    """A validated datadog conf: where the agent listens and whether spans are split per direction."""

    address: str
    port: int
    split_service: bool = False


def service_name(service: str, direction: Direction, destination: str, split: bool) -> str:
    """`<svc>_INBOUND` / `<svc>_OUTBOUND_<dest>` with splitService, else the service itself (§3.2)."""
    if not split or direction is Direction.UNSPECIFIED:
        return service
    if direction is Direction.INBOUND:
        return f"{service}_INBOUND"
    return f"{service}_OUTBOUND_{destination}"


class Datadog:
    """`BackendType` for datadog."""

    type_name: Final = TYPE
    tracer_name: Final = TRACER
    mesh_conf_fields: Final = tuple(json_field_names(mesh_pb2.DatadogTracingBackendConfig.DESCRIPTOR))

    def parse_mesh_conf(self, conf: Mapping[str, object], path: str) -> tuple[DatadogConf | None, list[Violation]]:
        parsed = read_struct(conf, mesh_pb2.DatadogTracingBackendConfig, path)
        typed = parsed.message
        violations = list(parsed.violations)
        if parsed.usable("address") and not typed.address:
            violations.append(Violation(field(path, "address"), "cannot be empty"))
        elif parsed.usable("address") and not valid_host(typed.address):
            violations.append(Violation(field(path, "address"), "has to be a valid IP address or domain name"))
        if parsed.usable("port") and not 1 <= typed.port <= 65535:
            violations.append(Violation(field(path, "port"), "port must be in the range [1, 65535]"))
        if violations:
            return None, violations
        return DatadogConf(str(typed.address), int(typed.port), bool(typed.split_service)), []

    def cluster(self, name: str, conf: CollectorConf, *, ipv6_dataplane: bool) -> cluster_pb2.Cluster:
        agent = _own(conf)
        return build_cluster(name, provided_endpoint(agent.address, agent.port, ipv6_dataplane))

    def provider(self, cluster: str, conf: CollectorConf, site: HcmSite) -> datadog_pb2.DatadogConfig:
        return datadog_pb2.DatadogConfig(collector_cluster=cluster, service_name=self.site_key(conf, site))

    def site_key(self, conf: CollectorConf, site: HcmSite) -> str:
        return service_name(site.service, site.direction, site.destination, _own(conf).split_service)

    def referenced_clusters(self, typed_config: any_pb2.Any) -> tuple[str, ...]:
        provider = datadog_pb2.DatadogConfig()
        if not typed_config.Unpack(provider) or not provider.collector_cluster:
            return ()
        return (str(provider.collector_cluster),)


def _own(conf: CollectorConf) -> DatadogConf:
    if not isinstance(conf, DatadogConf):
        raise TypeError(f"datadog backend given a {type(conf).__name__}")
    return conf


DATADOG: Final = Datadog()

