"""`controlplane inspect dataplane|dataplanes|mesh|traffic-trace`: effective tracing and span flow for humans."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from controlplane.cli import fleet
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


def _fetch_any(client: ApiClient, path: str, what: str) -> object:
    try:
        return client.request("GET", path).body
    except ApiFailure as exc:
        if exc.status == 404:
            raise click.ClickException(f"there is no {what}") from None
        raise


def render_dataplane(policies: dict[str, object], xds: dict[str, object], spans: dict[str, object] | None = None,
                     now: datetime | None = None) -> str:
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
    blocks = spans.get("spans") if spans else None
    if isinstance(blocks, list) and blocks:
        lines.append("  Spans:")
        for block in blocks:
            lines.extend(fleet.spans_lines(block, now or datetime.now(UTC)))
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


ENVOY_VIEWS = ("config-dump", "stats", "clusters")


@inspect.command("dataplane")
@click.argument("name")
@click.option("-m", "--mesh", default="default", show_default=True)
@click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True)
@click.option("--type", "view", type=click.Choice(("summary", *ENVOY_VIEWS)), default="summary", show_default=True,
              help="summary: what the control plane decided and whether spans flow; config-dump, stats, clusters: "
                   "what the Envoy itself holds (proxies run by `dataplane run` or the demo).")
@click.pass_obj
def inspect_dataplane(api_url: str, name: str, mesh: str, output: str, view: str) -> None:
    """Matched policy, effective backend and sampling, per-listener tracing, whether spans flow, xDS versions."""
    client = ApiClient(api_url)
    what = f'Dataplane with name "{name}" in mesh "{mesh}"'
    base = f"/meshes/{seg(mesh)}/dataplanes/{seg(name)}"
    if view != "summary":
        body = _fetch_any(client, f"{base}/{view}", what)
        click.echo(json.dumps(body, indent=2) if isinstance(body, dict | list) else str(body).rstrip("\n"))
        return
    policies = _fetch(client, f"{base}/policies", what)
    spans = _fetch(client, f"{base}/spans", what)
    xds = _fetch(client, f"{base}/xds", what)
    if output != "table":
        click.echo(dump({"policies": policies, "spans": spans, "xds": xds}, output))
        return
    click.echo(render_dataplane(policies, xds, spans))


@inspect.command("dataplanes")
@click.option("-m", "--mesh", default="default", show_default=True)
@click.option("--all-meshes", is_flag=True, help="Every mesh's Dataplanes.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only Dataplanes with this inbound tag.")
@click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True)
@click.pass_obj
def inspect_dataplanes(api_url: str, mesh: str, all_meshes: bool, tags: tuple[str, ...], output: str) -> None:
    """kumactl's table: status, last connected/updated, updates and errors, Envoy version, and span flow;
    then every connected Envoy whose node id names no Dataplane."""
    client = ApiClient(api_url)
    base = "/dataplanes+insights" if all_meshes else f"/meshes/{seg(mesh)}/dataplanes+insights"
    filters = [f"tag={seg(_tag(t))}" for t in tags]
    items: list[dict[str, object]] = []
    while True:
        query = "&".join([f"size={PAGE_SIZE}", f"offset={len(items)}", *filters])
        body = _fetch(client, f"{base}?{query}", f'mesh "{mesh}"')
        page = [i for i in _list(body.get("items")) if isinstance(i, dict)]
        items.extend(page)
        if not body.get("next") or not page:
            break
    ghosts = [g for g in _list(_fetch(client, "/unknown-dataplanes", "Envoy list").get("items")) if isinstance(g, dict)]
    if not all_meshes:
        ghosts = [g for g in ghosts if g.get("mesh") == mesh]
    if output != "table":
        click.echo(dump({"total": len(items), "items": items, "unknownDataplanes": ghosts}, output))
        return
    click.echo(fleet.dataplanes_table(items, ghosts, datetime.now(UTC)))


PAGE_SIZE = 1000


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _tag(value: str) -> str:
    key, sep, tag_value = value.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint="--tag")
    return f"{key}:{tag_value}"


@inspect.command("mesh")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True)
@click.pass_obj
def inspect_mesh(api_url: str, name: str, output: str) -> None:
    """Per tracing backend: how many proxies' spans flow, which cannot reach the collector, ..."""
    body = _fetch(ApiClient(api_url), f"/meshes/{seg(name)}/spans", f'Mesh with name "{name}"')
    if output != "table":
        click.echo(dump(body, output))
        return
    click.echo(fleet.mesh_text(body, datetime.now(UTC)))


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
