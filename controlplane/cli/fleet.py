"""Rendering of the fleet and span-flow views for `controlplane inspect` (pure: bodies and `now` in, text out).

`dataplanes_table` is kumactl's `inspect dataplanes` table (MESH, NAME, TAGS, STATUS, LAST CONNECTED AGO,
LAST UPDATED AGO, TOTAL UPDATES, TOTAL ERRORS, ENVOY VERSION, from Kuma release-2.11
`app/kumactl/cmd/inspect/inspect_dataplanes.go`: tags as `key=v1,v2` sorted and space-separated, ages as
kumactl's `table.Ago`, totals summed over every subscription, figures of the last one) plus TRACING: the
span-flow verdict and its backend, or `off:` and the policy's reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

Body = Mapping[str, Any]
HEADERS: Final = ("MESH", "NAME", "TAGS", "STATUS", "LAST CONNECTED AGO", "LAST UPDATED AGO", "TOTAL UPDATES",
                  "TOTAL ERRORS", "ENVOY VERSION", "TRACING")


def ago(timestamp: object, now: datetime) -> str:
    """kumactl's `table.Ago`: never, 0s, 42s, 5m, 3h, 2d, 1y."""
    if not isinstance(timestamp, str):
        return "never"
    try:
        seconds = int((now - datetime.fromisoformat(timestamp)).total_seconds())
    except ValueError:
        return "never"
    if seconds < -1:
        return "never"
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def tag_set(dataplane: Body) -> str:
    """Kuma's `MultiValueTagSet.String()` over every inbound's tags."""
    tags: dict[str, set[str]] = {}
    for inbound in dataplane.get("networking", {}).get("inbound", []) or []:
        for key, value in (inbound.get("tags") or {}).items():
            tags.setdefault(key, set()).add(value)
    return " ".join(sorted(f"{key}={','.join(sorted(values))}" for key, values in tags.items()))


def tracing_cell(spans: Body | None) -> str:
    if not spans:
        return "-"
    if spans.get("verdict") == "not traced":
        return f"off: {spans.get('message')}"
    return f"{spans.get('verdict')} ({spans.get('backend')})"


def overview_row(item: Body, now: datetime) -> list[str]:
    insight = item.get("dataplaneInsight") or {}
    subscriptions = insight.get("subscriptions") or []
    last = subscriptions[-1] if subscriptions else {}
    online = any("disconnectTime" not in s for s in subscriptions)
    status = last.get("status") or {}
    total = [sum(int((s.get("status") or {}).get("total", {}).get(key, 0)) for s in subscriptions)
             for key in ("responsesSent", "responsesRejected")]
    envoy = ((last.get("version") or {}).get("envoy") or {}).get("version") or "-"
    return [str(item.get("mesh")), str(item.get("name")), tag_set(item.get("dataplane") or {}),
            "Online" if online else "Offline", ago(last.get("connectTime"), now),
            ago(status.get("lastUpdateTime"), now), str(total[0]), str(total[1]), envoy,
            tracing_cell((insight.get("metadata") or {}).get("tracing"))]


def columns(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, three spaces apart (kumactl's table printer)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def dataplanes_table(items: Sequence[Body], ghosts: Sequence[Body], now: datetime) -> str:
    text = columns([list(HEADERS), *(overview_row(item, now) for item in items)])
    lines = [text]
    for ghost in ghosts:
        lines.append(f"{ghost.get('message')} (connected {ago(ghost.get('connectTime'), now)} ago)")
    return "\n".join(lines)


def spans_lines(spans: Body, now: datetime, indent: str = "    ") -> list[str]:
    """The Spans block of one backend: verdict and why, per-minute numbers, when spans were last accepted."""
    if spans.get("verdict") == "not traced":
        return [f"{indent}not traced: {spans.get('message')}"]
    lines = [f"{indent}{spans.get('backend')} ({spans.get('type')}): {spans.get('verdict')}: {spans.get('message')}"]
    rates = spans.get("perMinute")
    seen = f"last seen {ago(spans.get('lastSeen'), now)} ago" if spans.get("lastSeen") else "never seen"
    report = f"last report {ago(spans.get('lastReport'), now)} ago" if spans.get("lastReport") else "no report"
    if rates:
        lines.append(f"{indent}  per minute: spans sent {_num(rates.get('spansSent'))}, reports accepted "
                     f"{_num(rates.get('accepted'))}, dropped {_num(rates.get('dropped'))}, failed "
                     f"{_num(rates.get('failed'))}; requests {_num(rates.get('requests'))}, sampled "
                     f"{_num(rates.get('sampled'))}")
    lines.append(f"{indent}  {seen}; {report}")
    return lines


def mesh_text(body: Body, now: datetime) -> str:
    lines = [f"Mesh {body.get('mesh')}", f"  Dataplanes: {body.get('dataplanes')}"]
    for backend in body.get("backends") or []:
        proxies = backend.get("proxies") or {}
        states = ", ".join(f"{n} {state}" for state, n in proxies.items())
        lines.append(f"  Backend {backend.get('backend')} ({backend.get('type')}): {sum(proxies.values())} "
                     f"proxies: {states}")
        rates = backend.get("perMinute") or {}
        lines.append(f"    per minute: spans sent {_num(rates.get('spansSent'))}, reports accepted "
                     f"{_num(rates.get('accepted'))}, dropped {_num(rates.get('dropped'))}, failed "
                     f"{_num(rates.get('failed'))}")
    for entry in body.get("notTraced") or []:
        lines.append(f"  Not traced: {entry.get('proxies')} ({entry.get('reason')})")
    return "\n".join(lines)


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) else "-"
