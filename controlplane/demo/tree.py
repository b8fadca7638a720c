"""Render one zipkin trace (a list of v2 JSON spans) as a readable tree. Pure: no I/O, no clock.

Envoy's zipkin tracer shares span context by default: the CLIENT span of a caller's outbound listener
and the SERVER span of the callee's inbound listener carry the same span id. So a SERVER span whose id
equals a CLIENT span's id is drawn under that CLIENT span, and a span naming a shared id as its parent
is drawn under the span of that id on its own service (the callee's SERVER span).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

Span = Mapping[str, object]

_BRANCH: Final = "├─ "
_LAST: Final = "└─ "
_PIPE: Final = "│  "
_SPACE: Final = "   "


def service_of(span: Span) -> str:
    endpoint = span.get("localEndpoint")
    name = endpoint.get("serviceName") if isinstance(endpoint, Mapping) else None
    return str(name) if name else "?"


def trace_services(spans: Sequence[Span]) -> set[str]:
    """The services that reported a span of this trace."""
    return {service_of(span) for span in spans}


def format_duration(microseconds: object) -> str:
    if not isinstance(microseconds, int | float):
        return "-"
    if microseconds >= 1_000_000:
        return f"{microseconds / 1_000_000:.2f} s"
    return f"{microseconds / 1000:.1f} ms"


def span_status(span: Span) -> str:
    """HTTP status code, plus `error` when Envoy tagged the span as failed."""
    tags = span.get("tags")
    tags = tags if isinstance(tags, Mapping) else {}
    status = str(tags.get("http.status_code", "-"))
    return f"{status} error" if "error" in tags else status


def _parent_index(spans: Sequence[Span], i: int) -> int | None:
    span = spans[i]
    if span.get("kind") == "SERVER":
        for j, other in enumerate(spans):
            if j != i and other.get("id") == span.get("id") and other.get("kind") == "CLIENT":
                return j
    parent_id = span.get("parentId")
    candidates = [j for j, other in enumerate(spans) if j != i and parent_id and other.get("id") == parent_id]
    if not candidates:
        return None
    # With shared ids, prefer the span on the same service, then the SERVER side.
    return min(candidates, key=lambda j: (service_of(spans[j]) != service_of(span), spans[j].get("kind") != "SERVER"))


def _timestamp(span: Span) -> int:
    value = span.get("timestamp")
    return int(value) if isinstance(value, int | float) else 0


def _line(span: Span) -> str:
    kind = str(span.get("kind", "")).lower() or "span"
    return f"{service_of(span)}  {kind} {span.get('name', '?')}  {format_duration(span.get('duration'))}  {span_status(span)}"


def render_trace(spans: Sequence[Span]) -> str:
    """A header line (trace id, services, span count, root duration), then one indented line per span."""
    if not spans:
        return "trace (no spans)"
    parents = [_parent_index(spans, i) for i in range(len(spans))]
    children: dict[int | None, list[int]] = {}
    for i, parent in enumerate(parents):
        # A parent cycle (malformed ids) would hide spans; show such spans at the top instead.
        children.setdefault(None if parent is not None and _in_cycle(parents, i) else parent, []).append(i)
    for siblings in children.values():
        siblings.sort(key=lambda j: (_timestamp(spans[j]), j))
    roots = children.get(None, [])
    durations = [float(d) for d in (span.get("duration") for span in spans) if isinstance(d, int | float)]
    services = sorted(trace_services(spans))
    header = (f"trace {spans[0].get('traceId', '?')}  {len(services)} services ({', '.join(services)}), "
              f"{len(spans)} spans, {format_duration(max(durations, default=None))}")
    lines = [header]
    for n, root in enumerate(roots):
        _render(spans, children, root, "", n == len(roots) - 1, lines)
    return "\n".join(lines)


def _in_cycle(parents: Sequence[int | None], start: int) -> bool:
    seen, node = set(), parents[start]
    while node is not None:
        if node == start or node in seen:
            return True
        seen.add(node)
        node = parents[node]
    return False


def _render(spans: Sequence[Span], children: Mapping[int | None, list[int]], i: int, prefix: str, last: bool,
            lines: list[str]) -> None:
    lines.append(prefix + (_LAST if last else _BRANCH) + _line(spans[i]))
    below = children.get(i, [])
    for n, child in enumerate(below):
        _render(spans, children, child, prefix + (_SPACE if last else _PIPE), n == len(below) - 1, lines)
