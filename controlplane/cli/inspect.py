"""`controlplane inspect dataplane|traffic-trace NAME -m MESH`: effective tracing for humans."""

from __future__ import annotations

import click

from controlplane.cli.client import ApiClient, ApiFailure, api_url_option, seg
from controlplane.cli.output import OUTPUT_FORMATS, dump


def _fetch(client: ApiClient, path: str, what: str) -> dict[str, object]:
    try:
        body = client.request("GET", path).body
    except ApiFailure as exc:
        if exc.status == 404:
            raise click.ClickException(f"there is no {what}") from None
        raise
    return body if isinstance(body, dict) else {}


def render_dataplane(policies: dict[str, object], xds: dict[str, object]) -> str:
    dp = policies.get("dataplane", {})
    tracing = policies.get("tracing", {})
    assert isinstance(dp, dict) and isinstance(tracing, dict)
    lines = [f"Dataplane {dp.get('mesh')}/{dp.get('name')}"]
    lines.append(f"  TrafficTrace: {tracing.get('trafficTrace') or '-'}")
    if tracing.get("enabled"):
        sampling = f"{tracing.get('sampling')}%" + ("" if tracing.get("samplingSet") else " (default)")
        lines.append(f"  Tracing: {tracing.get('type')} backend {tracing.get('backend')!r}, sampling {sampling}")
    else:
        backend = f" ({tracing.get('backend')})" if tracing.get("backend") else ""
        lines.append(f"  Tracing: off{backend}: {tracing.get('message')}")
    lines.append("  Listeners:")
    rows = policies.get("listeners")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict):
            state = "traced" if row.get("traced") else f"not traced ({row.get('reason')})"
            lines.append(f"    {row.get('listener')}  {row.get('service')}  {row.get('protocol')}  {state}")
    envoy = f", Envoy {xds.get('envoyVersion')}" if xds.get("envoyVersion") else ""
    connected = f"connected ({xds.get('variant')}{envoy})" if xds.get("connected") else "not connected"
    lines.append(f"  xDS: {connected}")
    types = xds.get("types", {})
    for type_name, entry in (types.items() if isinstance(types, dict) else []):
        if not isinstance(entry, dict):
            continue
        acked = entry.get("versionAcked") or "-"
        row = f"    {type_name}: version {entry.get('version', '-')} acked {acked}"
        if entry.get("lastNackMessage"):
            row += f"  last NACK: {entry.get('lastNackMessage')}"
        lines.append(row)
    return "\n".join(lines)


@click.group()
@api_url_option
@click.pass_context
def inspect(ctx: click.Context, api_url: str) -> None:
    """Show effective tracing and the xDS config of proxies."""
    ctx.obj = api_url


@inspect.command("dataplane")
@click.argument("name")
@click.option("-m", "--mesh", default="default", show_default=True)
@click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True)
@click.pass_obj
def inspect_dataplane(api_url: str, name: str, mesh: str, output: str) -> None:
    """Matched TrafficTrace, effective backend and sampling, per-listener tracing, xDS versions and NACKs."""
    client = ApiClient(api_url)
    what = f'Dataplane with name "{name}" in mesh "{mesh}"'
    policies = _fetch(client, f"/meshes/{seg(mesh)}/dataplanes/{seg(name)}/policies", what)
    xds = _fetch(client, f"/meshes/{seg(mesh)}/dataplanes/{seg(name)}/xds", what)
    if output != "table":
        click.echo(dump({"policies": policies, "xds": xds}, output))
        return
    click.echo(render_dataplane(policies, xds))


@inspect.command("traffic-trace")
@click.argument("name")
@click.option("-m", "--mesh", default="default", show_default=True)
@click.pass_obj
def inspect_traffic_trace(api_url: str, name: str, mesh: str) -> None:
    """Data plane proxies the TrafficTrace applies to."""
    body = _fetch(ApiClient(api_url), f"/meshes/{seg(mesh)}/traffic-traces/{seg(name)}/dataplanes",
                  f'TrafficTrace with name "{name}" in mesh "{mesh}"')
    click.echo("Affected data plane proxies:")
    items = body.get("items")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            click.echo(f"  {item.get('name')}")
