"""`controlplane inspect dataplane|<policy kind> NAME -m MESH`: effective tracing for humans."""

from __future__ import annotations

import click

from controlplane.cli.client import ApiClient, ApiFailure, api_url_option, seg
from controlplane.cli.output import OUTPUT_FORMATS, dump
from controlplane.resources.kind import Kind
from controlplane.resources.registry import KINDS


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


def _policy_command(kind: Kind) -> click.Command:
    """`inspect <policy kind> NAME`: the proxies the policy targets (kumactl's `inspect traffic-trace`)."""

    @click.command(kind.singular, help=f"Data plane proxies the {kind.name} applies to.")
    @click.argument("name")
    @click.option("-m", "--mesh", default="default", show_default=True)
    @click.pass_obj
    def inspect_policy(api_url: str, name: str, mesh: str) -> None:
        body = _fetch(ApiClient(api_url), f"/meshes/{seg(mesh)}/{kind.ws_path}/{seg(name)}/dataplanes",
                      f'{kind.name} with name "{name}" in mesh "{mesh}"')
        click.echo("Affected data plane proxies:")
        items = body.get("items")
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                click.echo(f"  {item.get('name')}")

    return inspect_policy


for _kind in KINDS.policies():
    inspect.add_command(_policy_command(_kind))
