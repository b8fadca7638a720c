"""Dry runs that show their effect: `POST /dry-run` for a batch, and the `changes` of `PUT ...?dryRun=true`.

`POST /dry-run {"items": [resource, ...]}` (what `controlplane apply --dry-run` sends) validates the batch as
one unit, in order (api/service.py `dry_run_batch`: a Mesh created earlier in the batch exists for what
follows), and reports per resource its outcome (`created`/`updated`/`unchanged`), warnings, or violations,
plus `changes`: which proxies' tracing it would change and how (xds/preview.py: the real pipeline over the
reconciler's mirror with the batch overlaid). 200 when every resource is valid, else 400 with the same
report. Nothing is written either way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Final

from aiohttp import web

from controlplane.api.errors import ApiError
from controlplane.api.keys import INSPECTOR, STORE
from controlplane.api.service import ApplyResult, dry_run_batch
from controlplane.errors import ValidationError
from controlplane.resources.codec import decode_resource
from controlplane.resources.model import Resource
from controlplane.xds.preview import ProxyChange, ResourceEffect, TracingSummary

MAX_ITEMS: Final = 1000
_TITLE: Final = "Could not dry-run the resources"


async def dry_run(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, _TITLE, f"invalid JSON: {exc}") from None
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
        raise ApiError(400, _TITLE, f"the body must be {{\"items\": [1 to {MAX_ITEMS} resources]}}")
    decoded: list[Resource | ValidationError] = []
    for item in items:
        try:
            decoded.append(decode_resource(item))
        except ValidationError as exc:
            decoded.append(exc)
    valid = [r for r in decoded if isinstance(r, Resource)]
    checked = iter(await dry_run_batch(request.app[STORE], valid))
    outcomes = [next(checked) if isinstance(r, Resource) else r for r in decoded]
    applicable = [o.resource for o in outcomes if isinstance(o, ApplyResult)]
    effects = iter(await effects_of(request, applicable))
    results = [_result(item, outcome, next(effects) if isinstance(outcome, ApplyResult) else None)
               for item, outcome in zip(items, outcomes, strict=True)]
    ok = all(isinstance(o, ApplyResult) for o in outcomes)
    return web.json_response({"dryRun": True, "valid": ok, "results": results}, status=200 if ok else 400)


async def effects_of(request: web.Request, resources: Sequence[Resource]) -> list[ResourceEffect | None]:
    """Each resource's effect on proxies, or None per resource when no xDS side runs in this process."""
    inspector = request.app.get(INSPECTOR)
    if inspector is None or not resources:
        return [None] * len(resources)
    return list(await inspector.preview(resources))


def _result(item: object, outcome: ApplyResult | ValidationError,
            effect: ResourceEffect | None) -> dict[str, object]:
    envelope = item if isinstance(item, dict) else {}
    result: dict[str, object] = {key: envelope.get(key) for key in ("type", "mesh", "name") if key in envelope}
    if isinstance(outcome, ValidationError):
        result.update(result="invalid", details=outcome.details,
                      causes=[{"field": v.field, "message": v.message} for v in outcome.violations])
        return result
    result["result"] = outcome.outcome.value
    if outcome.warnings:
        result["warnings"] = list(outcome.warnings)
    if effect is not None:
        result["changes"] = changes_body(effect.changes)
    return result


def changes_body(changes: Sequence[ProxyChange]) -> list[dict[str, object]]:
    return [{"mesh": c.mesh, "dataplane": c.dataplane, "before": _summary(c.before) if c.before else None,
             "after": _summary(c.after), "changed": _changed(c)} for c in changes]


def _summary(summary: TracingSummary) -> dict[str, object]:
    sampling = {k: v for k, v in asdict(summary.sampling).items() if v is not None} if summary.sampling else None
    body: dict[str, object] = {"policy": summary.policy, "backend": summary.backend, "type": summary.backend_type,
                               "sampling": sampling, "tags": [asdict(t) for t in summary.tags]}
    if summary.reason:
        body["reason"] = summary.reason
    if summary.traced_listeners is not None:
        body["tracedListeners"] = list(summary.traced_listeners)
    return body


def _changed(change: ProxyChange) -> list[str]:
    """Which of policy, backend, sampling, tags, listeners traced differ (all of them for a new proxy)."""
    old, new = change.before, change.after
    fields = (("policy", "policy"), ("backend", "backend"), ("sampling", "sampling"), ("tags", "tags"),
              ("tracedListeners", "traced_listeners"))
    if old is None:
        return [name for name, _ in fields]
    return [name for name, attribute in fields if getattr(old, attribute) != getattr(new, attribute)]


def add_routes(app: web.Application) -> None:
    app.router.add_post("/dry-run", dry_run)
