"""Validation of a policy's top-level `targetRef`, as Kuma's `ValidateTargetRef`
(`pkg/core/resources/apis/mesh/validators.go`, release-2.11; reference kuma-meshtrace.md §2).

Works on the JSON form (a mapping) so every targetRef-based policy kind can use it from its own schema.
Paths are relative to the targetRef (the caller roots them at `spec.targetRef`); messages are Kuma's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from controlplane.errors import Violation
from controlplane.resources.paths import field, key

KIND_ORDER: Final = {"Mesh": 1, "Dataplane": 2, "MeshSubset": 3, "MeshGateway": 4, "MeshService": 5,
                     "MeshExternalService": 6, "MeshMultiZoneService": 7, "MeshServiceSubset": 8, "MeshHTTPRoute": 9}
"""Every targetRef kind the schema knows, with Kuma's precedence (`api/common/v1alpha1/targetref.go`)."""
SCHEMA_KINDS: Final = ("Mesh", "MeshSubset", "MeshGateway", "MeshService", "MeshExternalService",
                       "MeshMultiZoneService", "MeshServiceSubset", "MeshHTTPRoute", "Dataplane")
"""The schema's enum, in the order its message lists them."""
PROXY_TYPES: Final = ("Sidecar", "Gateway")

_NAME: Final = re.compile(r"^[0-9a-z.\-_]*\Z")
_TAG_NAME: Final = re.compile(r"^[a-zA-Z0-9.\-_:/]*\Z")
_TAG_VALUE: Final = re.compile(r"^[a-zA-Z0-9.\-_:]*\Z")
_SELECTOR_VALUE: Final = re.compile(r"^([a-zA-Z0-9.\-_:/]*|\*)\Z")
_FIELDS: Final = ("mesh", "name", "namespace", "labels", "tags", "proxyTypes", "sectionName")


def validate_target_ref(ref: Mapping[str, object], supported: Sequence[str], path: str = "") -> list[Violation]:
    """Every violation of one targetRef, for a policy supporting `supported` kinds."""
    kind = ref.get("kind")
    if not kind:
        return [Violation(field(path, "kind"), "must be defined")]
    if kind not in supported:
        return [Violation(field(path, "kind"), "value is not supported")]
    check = _Check(ref, str(kind), path)
    checks = _KIND_CHECKS.get(str(kind))
    if checks is not None:
        checks(check)
    return check.violations


class _Check:
    def __init__(self, ref: Mapping[str, object], kind: str, path: str) -> None:
        self.ref, self.kind, self.path = ref, kind, path
        self.violations: list[Violation] = []

    def set(self, name: str) -> bool:
        value = self.ref.get(name)
        return bool(value)

    def add(self, name: str, message: str) -> None:
        self.violations.append(Violation(field(self.path, name), message))

    def disallowed(self, *names: str) -> None:
        for name in names:
            if self.set(name):
                self.add(name, f"must not be set with kind {self.kind}")

    def required(self, name: str) -> None:
        if not self.set(name):
            self.add(name, f"must be set with kind {self.kind}")

    def valid_name(self) -> None:
        name = self.ref.get("name")
        if isinstance(name, str) and not _NAME.match(name):
            self.add("name", "invalid characters: must consist of lower case alphanumeric characters, '-', '.' and '_'.")

    def proxy_types(self) -> None:
        value = self.ref.get("proxyTypes")
        if value is not None and isinstance(value, list) and not value:
            self.add("proxyTypes", "must be undefined or have at least one element")

    def labels_or_name(self) -> None:
        if self.set("labels") and (self.set("name") or self.set("namespace")):
            self.add("labels", "either labels or name and namespace must be specified")

    def tags(self, value_re: re.Pattern[str], value_message: str) -> None:
        tags = self.ref.get("tags")
        if not isinstance(tags, Mapping):
            return
        tags_path = field(self.path, "tags")
        for name in sorted(tags):
            value = str(tags[name] or "")
            if not name:
                self.violations.append(Violation(tags_path, "tag name must be non-empty"))
            if not _TAG_NAME.match(name):
                self.violations.append(Violation(key(tags_path, name), "tag name must consist of alphanumeric "
                                                 "characters, dots, dashes, slashes and underscores"))
            if not value:
                self.violations.append(Violation(key(tags_path, name), "tag value must be non-empty"))
            if not value_re.match(value):
                self.violations.append(Violation(key(tags_path, name), value_message))


def _mesh(c: _Check) -> None:
    if c.set("name"):
        c.add("name", f"using name with kind {c.kind} is not yet supported")
    c.disallowed("mesh", "tags", "labels", "namespace", "sectionName")
    c.proxy_types()


def _dataplane(c: _Check) -> None:
    c.disallowed("tags", "mesh", "proxyTypes")
    c.labels_or_name()
    if c.set("sectionName"):
        c.add("sectionName", "can only be used with inbound policies")


def _mesh_subset(c: _Check) -> None:
    c.disallowed("name", "mesh")
    c.tags(_TAG_VALUE, "tag value must consist of alphanumeric characters, dots, dashes and underscores")
    c.disallowed("labels", "namespace", "sectionName")
    c.proxy_types()


def _mesh_service(c: _Check) -> None:
    c.valid_name()
    c.disallowed("mesh", "tags", "proxyTypes")
    if not c.set("labels"):
        c.required("name")
    c.labels_or_name()


def _mesh_service_subset(c: _Check) -> None:
    c.required("name")
    c.valid_name()
    c.disallowed("mesh", "proxyTypes")
    c.tags(_SELECTOR_VALUE, 'tag value must consist of alphanumeric characters, dots, dashes, slashes and '
                            'underscores or be "*"')
    if c.kind == "MeshGateway" and c.set("tags"):
        c.add("tags", f"must not be set with kind {c.kind}")
    c.disallowed("labels", "namespace", "sectionName")


_KIND_CHECKS: Final = {"Mesh": _mesh, "Dataplane": _dataplane, "MeshSubset": _mesh_subset,
                       "MeshService": _mesh_service, "MeshServiceSubset": _mesh_service_subset,
                       "MeshGateway": _mesh_service_subset}
