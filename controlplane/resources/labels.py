"""Resource labels (Kuma 2.x `labels` in a resource's envelope): validation and the computed `kuma.io/mesh`.

A resource keeps only the labels its author gave (`Resource.labels`); the labels Kuma computes are added on
output and dropped on input, so a stored resource never carries a stale copy of its own mesh. The only
computed label here is `kuma.io/mesh` on mesh-scoped kinds (Kuma's `ComputeLabels`; the zone, origin and
env labels describe multi-zone deployments this control plane does not have).

Rules (chosen; Kuma's API server takes Kubernetes' label rules, `validateLabels` in
`pkg/api-server/resource_endpoints.go`, and so do we, with its messages):
- keys are Kubernetes qualified names: an optional DNS-subdomain prefix (at most 253 characters) and `/`,
  then a name of at most 63 characters of `[A-Za-z0-9._-]` that starts and ends with a letter or digit;
- values are at most 63 characters of the same set, starting and ending with a letter or digit. Unlike
  Kubernetes and Kuma, a value may not be empty: an empty value selects nothing a `targetRef` could mean
  and is almost always a templating slip (`{{ version }}` with no `-v version=`);
- a `kuma.io/mesh` label must name the resource's own mesh (on a global kind, where the mesh is empty, it
  is always refused, as in Kuma).
Pure: the codec calls `decode_labels` and `output_labels`; the stores only persist what it returns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from controlplane.errors import Violation
from controlplane.resources.paths import key

MESH_LABEL: Final = "kuma.io/mesh"
NAME_MAX: Final = 63
PREFIX_MAX: Final = 253
_QUALIFIED_FMT: Final = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED: Final = re.compile(f"^{_QUALIFIED_FMT}\\Z")
_SUBDOMAIN_FMT: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_SUBDOMAIN: Final = re.compile(f"^{_SUBDOMAIN_FMT}\\Z")
_NAME_RULE: Final = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                     "alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc', regex used for "
                     f"validation is '{_QUALIFIED_FMT}')")
_VALUE_RULE: Final = ("a valid label must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                      "end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345', regex used "
                      f"for validation is '{_QUALIFIED_FMT}')")
_SUBDOMAIN_RULE: Final = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
                          "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
                          f"used for validation is '{_SUBDOMAIN_FMT}')")
MESH_LABEL_DIFFERS: Final = f"{MESH_LABEL} label must not differ from mesh set on resource"
Labels = Mapping[str, str]
EMPTY: Final[Labels] = MappingProxyType({})


def decode_labels(value: object, mesh: str, mesh_scoped: bool) -> tuple[Labels, list[Violation]]:
    """The user labels of a document's `labels` (None = none), without the computed `kuma.io/mesh` when it
    names the resource's mesh, and every violation (Kuma's order: the mesh label, then keys sorted)."""
    if value is None:
        return EMPTY, []
    if not isinstance(value, dict):
        return EMPTY, [Violation("labels", "must be a map of strings to strings")]
    violations: list[Violation] = []
    if MESH_LABEL in value and not (mesh_scoped and value[MESH_LABEL] == mesh):
        violations.append(Violation(key("labels", MESH_LABEL), MESH_LABEL_DIFFERS))
    for name in sorted(value, key=str):
        violations.extend(_check_entry(name, value[name]))
    if violations:
        return EMPTY, violations
    kept = {name: text for name, text in sorted(value.items()) if not (mesh_scoped and name == MESH_LABEL)}
    return MappingProxyType(kept), []


def _check_entry(name: object, text: object) -> list[Violation]:
    if not isinstance(name, str):
        return [Violation("labels", f"label names must be strings, got {name!r}")]
    path = key("labels", name)
    found = [Violation(path, message) for message in key_problems(name)]
    if not isinstance(text, str):
        return [*found, Violation(path, "must be a string")]
    return found + [Violation(path, message) for message in value_problems(text)]


def key_problems(name: str) -> list[str]:
    """Kubernetes' `IsQualifiedName` messages for a label key."""
    parts = name.split("/")
    if len(parts) > 2:
        return [(f"a qualified name {_NAME_RULE} with an optional DNS subdomain prefix and '/' "
                 "(e.g. 'example.com/MyName')")]
    problems: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            if len(prefix) > PREFIX_MAX:
                problems.append(f"prefix part must be no more than {PREFIX_MAX} characters")
            if not _SUBDOMAIN.match(prefix):
                problems.append(f"prefix part {_SUBDOMAIN_RULE}")
    short = parts[-1]
    if not short:
        problems.append("name part must be non-empty")
    elif len(short) > NAME_MAX:
        problems.append(f"name part must be no more than {NAME_MAX} characters")
    if not _QUALIFIED.match(short):
        problems.append(f"name part {_NAME_RULE}")
    return problems


def value_problems(text: str) -> list[str]:
    if not text:
        return ["cannot be empty"]
    problems = [f"must be no more than {NAME_MAX} characters"] if len(text) > NAME_MAX else []
    if not _QUALIFIED.match(text):
        problems.append(_VALUE_RULE)
    return problems


def output_labels(labels: Labels, mesh: str, mesh_scoped: bool) -> dict[str, str]:
    """What Kuma 2.x returns: the user's labels plus the computed `kuma.io/mesh`, keys sorted."""
    out = dict(labels)
    if mesh_scoped:
        out[MESH_LABEL] = mesh
    return dict(sorted(out.items()))


def frozen(labels: Labels) -> Labels:
    """A private, read-only copy (stores never share a mutable mapping with a caller)."""
    return MappingProxyType(dict(sorted(labels.items()))) if labels else EMPTY
