"""`controlplane bootstrap --mesh MESH --name NAME`: print the Envoy bootstrap of one Dataplane.

The Dataplane must already exist (it is read through the HTTP API): its identifying service becomes
`node.cluster`, which Envoy's zipkin tracer reports as the span's service name (kuma-tracing.md §3.4).
The YAML quotes every string value, because Envoy's YAML parser reads plain `n`, `y`, `on`, `off` as
booleans where PyYAML would leave them unquoted (a service named `n` would become `cluster: false`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import click
import yaml

from controlplane.cli.client import ApiClient, ApiFailure, api_url_option, current_settings, seg
from controlplane.cli.output import emit_secret
from controlplane.dataplane.bootstrap import DEFAULT_STATS, StatsReporting, build_bootstrap
from controlplane.errors import ValidationError
from controlplane.resources.codec import decode_resource
from controlplane.resources.dataplane import identifying_service
from controlplane.resources.generated import mesh_pb2
from controlplane.xds.node import node_id

DEFAULT_CP_ADDRESS: Final = "127.0.0.1:5678"

cp_address_option = click.option(
    "--cp-address", default=DEFAULT_CP_ADDRESS, show_default=True, metavar="HOST:PORT",
    help="Where Envoy reaches the control plane's ADS (gRPC) server.",
)


stats_flush_interval_option = click.option(
    "--stats-flush-interval", "stats_flush_s", type=click.FloatRange(1.0, 300.0), default=DEFAULT_STATS.flush_interval_s,
    show_default=True, metavar="SECONDS",
    help="How often Envoy reports its tracing stats to the control plane (span-flow verdicts follow within two "
         "reports; each report costs the control plane ~0.6 ms of CPU, README \"Benchmarks\").",
)


token_file_option = click.option(
    "--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="Dataplane token (controlplane generate dataplane-token) sent to the ADS server by Envoy.",
)


def read_token_file(path: Path | None) -> str | None:
    """The dataplane token in `path` (surrounding whitespace dropped); a one-line error if unreadable."""
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read the token file {path}: {exc}") from None
    if not token or any(c.isspace() for c in token):
        raise click.ClickException(f"{path} does not hold a token (expected one line, no spaces)")
    return token


def read_ca_cert() -> str | None:
    """The `--ca-cert-file` (env CONTROLPLANE_CA_CERT_FILE) PEM, for Envoy's TLS connection to ADS."""
    path = current_settings().ca_cert_file
    if path is None:
        return None
    try:
        pem = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read the CA certificate {path}: {exc}") from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise click.ClickException(f"{path} is not a PEM certificate")
    return pem


def parse_cp_address(value: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) → (host, port); a click error names the option otherwise.

    The host becomes the `ads_cluster` endpoint verbatim, so anything but an IP literal or a DNS name
    (a URL such as `http://127.0.0.1:5678`, an unbracketed IPv6 address) is refused here rather than
    producing a bootstrap whose cluster Envoy can never reach.
    """
    host, sep, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    problem = _cp_host_problem(host, bracketed) if sep and host else "no host"
    if not problem and not (port.isdigit() and 1 <= int(port) <= 65535):
        problem = "the port must be a number in 1-65535"
    if problem:
        raise click.BadParameter(f"expected HOST:PORT with a port in 1-65535 (e.g. {DEFAULT_CP_ADDRESS}), "
                                 f"got {value!r}: {problem}", param_hint="--cp-address")
    return host, int(port)


_DNS_NAME: Final = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?")


def _cp_host_problem(host: str, bracketed: bool) -> str:
    """Why `host` is neither an IP address nor a DNS name ("" when it is one)."""
    if "://" in host or "/" in host:
        return "give the address without a scheme or path"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if ":" in host or bracketed:
            return f"{host!r} is not an IPv6 address"
        return "" if len(host) <= 253 and _DNS_NAME.fullmatch(host) else f"{host!r} is not a host name"
    if address.version == 6 and not bracketed:
        return f"write an IPv6 address in brackets, e.g. [{host}]:PORT"
    return "brackets are for IPv6 addresses" if address.version == 4 and bracketed else ""


def render_bootstrap_yaml(bootstrap: Mapping[str, object]) -> str:
    """Block-style YAML with every string value double-quoted (safe for Envoy's YAML parser)."""
    return yaml.dump(bootstrap, Dumper=_QuotingDumper, sort_keys=False, default_flow_style=False)


class _QuotingDumper(yaml.SafeDumper):
    """Keys stay plain when PyYAML finds them safe; string values are always double-quoted."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _represent_mapping(dumper: yaml.SafeDumper, data: Mapping[str, object]) -> yaml.MappingNode:
    pairs = [(dumper.represent_scalar("tag:yaml.org,2002:str", str(key)), dumper.represent_data(value))
             for key, value in data.items()]
    return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')


_QuotingDumper.add_representer(dict, _represent_mapping)
_QuotingDumper.add_representer(str, _represent_str)


def fetch_dataplane(client: ApiClient, mesh: str, name: str) -> mesh_pb2.Dataplane:
    """The stored Dataplane's spec; a missing one is a one-line error telling how to create it."""
    try:
        body = client.request("GET", f"/meshes/{seg(mesh)}/dataplanes/{seg(name)}").body
    except ApiFailure as exc:
        if exc.status == 404:
            raise click.ClickException(
                f'there is no Dataplane "{name}" in mesh "{mesh}": apply it first '
                f"(controlplane apply -f dataplane.yaml) or use `controlplane dataplane run`"
            ) from None
        raise
    try:
        resource = decode_resource(body)
    except ValidationError as exc:
        raise click.ClickException(f"the control plane returned an invalid Dataplane: {exc}") from None
    assert isinstance(resource.spec, mesh_pb2.Dataplane)
    return resource.spec


@click.command()
@click.option("-m", "--mesh", required=True, help="Mesh of the Dataplane.")
@click.option("--name", required=True, help="Name of the Dataplane (node id becomes MESH.NAME).")
@cp_address_option
@click.option("--admin-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Envoy admin port on 127.0.0.1 (0 = any; pass --admin-address-path to Envoy to learn it).")
@click.option("--delta", is_flag=True, help="Use incremental (delta) xDS instead of state of the world.")
@click.option("-o", "--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the bootstrap to this file instead of stdout (mode 0600: it may hold a token).")
@token_file_option
@stats_flush_interval_option
@api_url_option
def bootstrap(mesh: str, name: str, cp_address: str, admin_port: int, delta: bool, output_path: Path | None,
              token_file: Path | None, stats_flush_s: float, api_url: str) -> None:
    """Print the Envoy bootstrap (YAML) for an existing Dataplane: run `envoy -c` with it.

    With --ca-cert-file, Envoy reaches the ADS server over TLS trusting that CA.
    """
    cp_host, cp_port = parse_cp_address(cp_address)
    token, ca_cert = read_token_file(token_file), read_ca_cert()
    spec = fetch_dataplane(ApiClient(api_url), mesh, name)
    config = build_bootstrap(node_id=node_id(mesh, name), service=identifying_service(spec), cp_host=cp_host,
                             cp_port=cp_port, admin_port=admin_port, delta=delta, token=token,
                             ca_cert_pem=ca_cert, stats=StatsReporting(flush_interval_s=stats_flush_s))
    emit_secret(render_bootstrap_yaml(config), output_path, f"the bootstrap of {mesh}.{name}")
