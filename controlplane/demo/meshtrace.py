"""`controlplane demo --policy meshtrace`: the MeshTrace the demo applies, and where its spans go.

The policy is Kuma's docs YAML: the simple example of the chosen backend (Zipkin or OpenTelemetry) plus the
docs' `tags` example (a literal, a header with a default, a header without one), applied unchanged but for
the collector address. Spans go to the built-in receivers unless an external collector is given: zipkin
v2 JSON to `SpanReceiver`, OTLP (gRPC, or HTTP with `--otlp-http`) to `OtlpReceiver`, both feeding the same
trace printer. Also the option rules (`option_problem`, pure) and the "try this" hints for MeshTrace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Final

from controlplane.demo.otlp_receiver import OtlpReceiver
from controlplane.demo.receiver import SpanReceiver
from controlplane.demo.topology import HOST
from controlplane.resources.urls import parse_endpoint

TRAFFIC_TRACE: Final = "traffictrace"
MESH_TRACE: Final = "meshtrace"
ZIPKIN: Final = "zipkin"
OPENTELEMETRY: Final = "opentelemetry"

MESH_YAML: Final = "type: Mesh\nname: default\n"
MESHTRACE_YAML: Final = """\
type: MeshTrace
name: default
mesh: default
spec:
  default:
    tags:
      - name: team
        literal: core
      - name: env
        header:
          name: x-env
          default: prod
      - name: version
        header:
          name: x-version
    backends:
{backend}"""
BACKEND_YAML: Final = {
    ZIPKIN: "      - type: Zipkin\n        zipkin:\n          url: {address}\n          apiVersion: httpJson\n",
    OPENTELEMETRY: "      - type: OpenTelemetry\n        openTelemetry:\n          endpoint: {address}\n",
}


def option_problem(policy: str, backend: str, zipkin_url: str | None, otel_endpoint: str | None,
                   otlp_http: bool) -> str | None:
    """Why these demo options do not go together (one line), or None."""
    if policy == TRAFFIC_TRACE and backend == OPENTELEMETRY:
        return ("--backend opentelemetry needs --policy meshtrace: a TrafficTrace traces with the Mesh's "
                "backends, which are zipkin or datadog")
    if zipkin_url is not None and backend != ZIPKIN:
        return "--zipkin-url goes with --backend zipkin"
    if (otel_endpoint is not None or otlp_http) and backend != OPENTELEMETRY:
        return f"{'--otel-endpoint' if otel_endpoint is not None else '--otlp-http'} goes with --backend opentelemetry"
    if otel_endpoint is not None and otlp_http:
        return "--otlp-http is for the built-in receiver; give an http:// --otel-endpoint instead"
    if otel_endpoint is not None and parse_endpoint(otel_endpoint) is None:
        return f"--otel-endpoint {otel_endpoint!r}: must be host:port, or an http:// or https:// URL"
    return None


def meshtrace_yaml(backend: str, address: str) -> str:
    """The Mesh and the demo's MeshTrace (`address`: the zipkin URL or the OpenTelemetry endpoint)."""
    return MESH_YAML + "---\n" + MESHTRACE_YAML.format(backend=BACKEND_YAML[backend].format(address=address))


async def start_meshtrace(stack: AsyncExitStack, backend: str, external: str | None, otlp_http: bool,
                          apply: Callable[[str], Awaitable[None]], progress: Callable[[str], None]
                          ) -> SpanReceiver | None:
    """Start the built-in receiver(s) unless ``external`` names the collector, apply the MeshTrace; return
    the receiver whose traces are printed (None: spans go elsewhere)."""
    receiver: SpanReceiver | None = None
    if external is not None:
        address = external
        progress(f"spans go to {address}")
    elif backend == ZIPKIN:
        receiver = SpanReceiver(HOST, 0)
        await receiver.start()
        stack.push_async_callback(receiver.stop)
        address = receiver.url
        progress(f"built-in zipkin receiver at {address}")
    else:
        receiver = SpanReceiver(HOST, 0)  # groups and prints; the OTLP receiver feeds it (no zipkin port)
        otlp = OtlpReceiver(receiver, HOST)
        await otlp.start()
        stack.push_async_callback(otlp.stop)
        address = otlp.http_url if otlp_http else otlp.endpoint
        progress(f"built-in OTLP receiver: gRPC {otlp.endpoint}, HTTP {otlp.http_url} (this demo exports over "
                 f"{'HTTP' if otlp_http else 'gRPC'})")
    await apply(meshtrace_yaml(backend, address))
    kind = "Zipkin" if backend == ZIPKIN else "OpenTelemetry"
    progress(f"applied Mesh default and MeshTrace default ({kind} backend {address}, tags team, env, version)")
    return receiver


def meshtrace_next_steps(api_url: str, entry_url: str) -> str:
    """What to try while the MeshTrace demo runs (``entry_url``: frontend's sidecar)."""
    return f"""
Control plane API: {api_url}   (Ctrl-C stops everything)
Web GUI: {api_url}/gui/   (the service graph: {api_url}/gui/meshes/default/graph)
Try, in another shell:
  export CONTROLPLANE_API_URL={api_url}
  controlplane get meshtraces
  controlplane inspect dataplane frontend-1   # MeshTraces in merge order, merged conf, tracing per listener
  curl -s {api_url}/meshes/default/dataplanes/frontend-1/_rules
  controlplane inspect meshtrace default
  curl -s -H 'x-env: staging' {entry_url}/   # that trace's spans get env=staging instead of the default
  controlplane delete meshtrace default       # and traces stop
Traces, as they arrive:
"""
