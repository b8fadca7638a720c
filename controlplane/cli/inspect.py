"""`controlplane inspect dataplane NAME | dataplanes | mesh NAME | meshes | <policy> NAME`: effective tracing,
span flow and overviews for humans.

One `inspect <policy>` command per policy kind of the registry (`inspect traffic-trace`, and MeshTrace's once
it is registered), reading Kuma's generic route `/meshes/{mesh}/{ws}/{name}/dataplanes`.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Final

import click

from controlplane.cli import fleet
from controlplane.cli.client import ApiClient, ApiFailure, api_url_option, client_options, seg
from controlplane.cli.completion import complete_name
from controlplane.cli.output import OUTPUT_FORMATS, dump, plain_table
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.kind import Kind
from controlplane.resources.mesh import tracing_column
from controlplane.resources.registry import KINDS

PAGE_SIZE: Final = 1000
NO_DATAPLANES: Final = "no dataplanes"


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
    matched = policies.get("matchedPolicies")
    meshtraces = matched.get("MeshTrace") if isinstance(matched, dict) else None
    if meshtraces:
        lines.append(f"  MeshTrace (merge order): {', '.join(str(n) for n in meshtraces)}")
    lines.append(f"  TrafficTrace: {tracing.get('trafficTrace') or '-'}")
    for item in tracing.get("notApplied") or []:
        if isinstance(item, dict):
            lines.append(f"    {item.get('message')}")
    if tracing.get("enabled") and tracing.get("policy"):
        sampling = tracing.get("samplingAll") or {}
        rates = ", ".join(f"{k} {v}%" for k, v in sampling.items()) if isinstance(sampling, dict) and sampling \
            else "100% (default)"
        tags = ", ".join(str(t.get("name")) for t in tracing.get("tags") or [] if isinstance(t, dict)) or "-"
        lines.append(f"  Tracing: {tracing.get('type')} ({tracing.get('policy')}), sampling {rates}, tags {tags}")
    elif tracing.get("enabled"):
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
@client_options
def inspect() -> None:
    """Show effective tracing and the xDS config of proxies, mesh overviews, and what a policy selects."""


ENVOY_VIEWS = ("config-dump", "stats", "clusters")


@inspect.command("dataplane")
@click.argument("name", shell_complete=complete_name(lambda ctx: DATAPLANE))
@click.option("-m", "--mesh", default="default", show_default=True)
@click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True)
@click.option("--type", "view", type=click.Choice(("summary", *ENVOY_VIEWS)), default="summary", show_default=True,
              help="summary: what the control plane decided and whether spans flow; config-dump, stats, clusters: "
                   "what the Envoy itself holds (proxies run by `dataplane run` or the demo).")
@api_url_option
def inspect_dataplane(name: str, mesh: str, output: str, view: str, api_url: str) -> None:
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
@api_url_option
def inspect_dataplanes(mesh: str, all_meshes: bool, tags: tuple[str, ...], output: str, api_url: str) -> None:
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
@api_url_option
def inspect_mesh(name: str, output: str, api_url: str) -> None:
    """Per tracing backend: how many proxies' spans flow, which cannot reach the collector, ..."""
    body = _fetch(ApiClient(api_url), f"/meshes/{seg(name)}/spans", f'Mesh with name "{name}"')
    if output != "table":
        click.echo(dump(body, output))
        return
    click.echo(fleet.mesh_text(body, datetime.now(UTC)))


@inspect.command("meshes")
@click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True)
@api_url_option
def inspect_meshes(output: str, api_url: str) -> None:
    """Per mesh: dataplanes online/total, policies of each kind, tracing backends (kumactl's columns)."""
    client = ApiClient(api_url)
    insights = list(all_items(client, "/mesh-insights"))
    if output != "table":
        click.echo(dump({"total": len(insights), "items": insights, "next": None}, output))
        return
    meshes = {str(m.get("name")): m for m in all_items(client, "/meshes")}
    click.echo(render_meshes(insights, meshes))


def render_meshes(insights: list[dict[str, object]], meshes: dict[str, dict[str, object]]) -> str:
    """kumactl's `inspect meshes` table: MESH, DATAPLANES (online/total), one count column per policy kind
    of the registry, then this control plane's TRACING column (the mesh's backends, as `get meshes`)."""
    kinds = KINDS.policies()
    headers = ["MESH", "DATAPLANES", *(kind.plural_display_name.upper() for kind in kinds), "TRACING"]
    rows = []
    for insight in insights:
        dataplanes = insight.get("dataplanes")
        stats = dataplanes if isinstance(dataplanes, dict) else {}
        policies = insight.get("policies")
        counts = policies if isinstance(policies, dict) else {}
        name = str(insight.get("name"))
        cells = [name, f"{stats.get('online', 0)}/{stats.get('total', 0)}"]
        cells += [str((counts.get(kind.name) or {}).get("total", 0)) for kind in kinds]
        cells.append(tracing_column(meshes.get(name, {}), datetime.now(UTC)))
        rows.append(cells)
    return plain_table(headers, rows)


def all_items(client: ApiClient, path: str) -> Iterator[dict[str, object]]:
    """Every item of a list route, following its `next` links."""
    page: str | None = f"{path}?size={PAGE_SIZE}"
    while page is not None:
        body = client.request("GET", page).body
        if not isinstance(body, dict):
            raise click.ClickException(f"unexpected response for {page}: {body!r}")
        yield from (item for item in body.get("items") or [] if isinstance(item, dict))
        next_url = body.get("next")
        page = _path_and_query(next_url) if isinstance(next_url, str) and next_url else None


def _path_and_query(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _policy_command(kind: Kind) -> click.Command:
    @click.command(kind.singular, help=f"Data plane proxies the {kind.name} applies to.")
    @click.argument("name", shell_complete=complete_name(lambda ctx: kind))
    @click.option("-m", "--mesh", default="default", show_default=True)
    @api_url_option
    def inspect_policy(name: str, mesh: str, api_url: str) -> None:
        body = _fetch(ApiClient(api_url), f"/meshes/{seg(mesh)}/{kind.ws_path}/{seg(name)}/dataplanes",
                      f'{kind.name} with name "{name}" in mesh "{mesh}"')
        click.echo(render_policy_dataplanes(body))

    return inspect_policy


def render_policy_dataplanes(body: dict[str, object]) -> str:
    """kumactl's `inspect <policy>` text (a header, a blank line, one proxy per line), or that there are none."""
    items = body.get("items")
    names = [str(i.get("name")) for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    return "Affected data plane proxies:\n\n" + ("\n".join(f"  {n}" for n in names) if names else NO_DATAPLANES)


for _kind in KINDS.policies():
    inspect.add_command(_policy_command(_kind))
