"""Mesh: short-form normalisation and validation of the tracing section.

Validation follows Kuma's `mesh_validator.go` (reference kuma-tracing.md §1.2) message for message, field
path for field path, including its use of `config` (not `conf`) for paths inside a backend's conf. Checks
that Kuma leaves to Envoy (a collector URL without a path, a scheme Envoy cannot talk) are added here so a
config Envoy would reject never reaches it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.errors import Violation
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.paths import field, index
from controlplane.resources.schema import check_message, json_field_names

ZIPKIN: Final = "zipkin"
DATADOG: Final = "datadog"
BACKEND_TYPES: Final = (ZIPKIN, DATADOG)
CONF_TYPES: Final[dict[str, type[Message]]] = {
    ZIPKIN: mesh_pb2.ZipkinTracingBackendConfig,
    DATADOG: mesh_pb2.DatadogTracingBackendConfig,
}
API_VERSIONS: Final = ("httpJsonV1", "httpJson", "httpProto")
_HOSTNAME: Final = re.compile(r"^(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z")


def normalize_mesh(doc: dict[str, object]) -> list[Violation]:
    """Move short-form backend keys (`url` right under a zipkin backend, as the docs write it) into `conf`.

    Mutates `doc` in place. A key set both ways is an error rather than a silent pick.
    """
    tracing = doc.get("tracing")
    backends = tracing.get("backends") if isinstance(tracing, dict) else None
    if not isinstance(backends, list):
        return []
    violations: list[Violation] = []
    own = set(json_field_names(mesh_pb2.TracingBackend.DESCRIPTOR)) | {"conf"}
    for i, backend in enumerate(backends):
        if not isinstance(backend, dict):
            continue
        conf_type = CONF_TYPES.get(str(backend.get("type", "")))
        if conf_type is None:
            continue
        short = [k for k in backend if k not in own and k in json_field_names(conf_type.DESCRIPTOR)]
        if not short:
            continue
        conf = backend.get("conf")
        if conf is None:
            conf = backend["conf"] = {}
        if not isinstance(conf, dict):
            continue
        for k in short:
            value = backend.pop(k)
            if k in conf:
                path = field(index("tracing.backends", i), k)
                violations.append(Violation(path, f"is also set in conf.{k}; set it in one place"))
            else:
                conf[k] = value
    return violations


def validate_mesh(mesh: mesh_pb2.Mesh) -> list[Violation]:
    """Every violation of Kuma's tracing rules, in Kuma's order (per backend, then defaultBackend)."""
    tracing = mesh.tracing
    violations: list[Violation] = []
    seen: set[str] = set()
    for i, backend in enumerate(tracing.backends):
        path = index("tracing.backends", i)
        violations.extend(_validate_backend(backend, path))
        if backend.name and backend.name in seen:
            violations.append(
                Violation(field(path, "name"), f'"{backend.name}" name is already used for another backend')
            )
        seen.add(backend.name)
    if tracing.default_backend and tracing.default_backend not in seen:
        violations.append(
            Violation("tracing.defaultBackend", "has to be set to one of the tracing backend in mesh")
        )
    return violations


def _validate_backend(backend: mesh_pb2.TracingBackend, path: str) -> list[Violation]:
    violations: list[Violation] = []
    if not backend.name:
        violations.append(Violation(field(path, "name"), "cannot be empty"))
    if backend.HasField("sampling") and not 0.0 <= backend.sampling.value <= 100.0:
        violations.append(Violation(field(path, "sampling"), "has to be in [0.0 - 100.0] range"))
    config_path = field(path, "config")
    if backend.type == ZIPKIN:
        violations.extend(_validate_zipkin(backend, config_path))
    elif backend.type == DATADOG:
        violations.extend(_validate_datadog(backend, config_path))
    else:
        violations.append(
            Violation(field(path, "type"), 'unknown backend type. Available backends: "zipkin", "datadog"')
        )
    return violations


def conf_dict(backend: mesh_pb2.TracingBackend) -> dict[str, object]:
    return json_format.MessageToDict(backend.conf) if backend.HasField("conf") else {}


def _typed_conf(
    backend: mesh_pb2.TracingBackend, path: str
) -> tuple[mesh_pb2.ZipkinTracingBackendConfig | mesh_pb2.DatadogTracingBackendConfig | None, list[Violation]]:
    conf_type = CONF_TYPES[backend.type]
    raw = _integral_floats_to_int(dict(sorted(conf_dict(backend).items())))
    problems = check_message(raw, conf_type.DESCRIPTOR, path)
    if problems:
        return None, problems
    typed = conf_type()
    json_format.ParseDict(raw, typed)
    return typed, []


def _integral_floats_to_int(value: object) -> object:
    """Struct stores every number as a double; integer fields (port) need ints back to parse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_floats_to_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats_to_int(v) for v in value]
    return value


def _validate_zipkin(backend: mesh_pb2.TracingBackend, path: str) -> list[Violation]:
    typed, problems = _typed_conf(backend, path)
    if not isinstance(typed, mesh_pb2.ZipkinTracingBackendConfig):
        return problems
    violations: list[Violation] = []
    if typed.api_version and typed.api_version not in API_VERSIONS:
        violations.append(
            Violation(field(path, "apiVersion"), "has invalid value. Allowed values: httpJsonV1, httpJson, httpProto")
        )
    url_path = field(path, "url")
    if not typed.url:
        return [*violations, Violation(url_path, "cannot be empty")]
    violations.extend(Violation(url_path, m) for m in zipkin_url_problems(typed.url))
    return violations


def zipkin_url_problems(url: str) -> list[str]:
    """Kuma's URL checks, then the ones Envoy would otherwise reject at runtime (empty collector path)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):  # urlsplit silently drops \t \n \r; Go rejects them
        return ["invalid URL"]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ["invalid URL"]
    if not parts.scheme or not parts.hostname:
        return ["invalid URL"]
    if port is None:
        return ["port has to be explicitly specified"]
    problems: list[str] = []
    if parts.scheme not in ("http", "https"):
        problems.append('scheme has to be "http" or "https"')
    if not valid_host(parts.hostname):
        problems.append("invalid URL")
    if parts.path in ("", "/"):
        problems.append("has to include the collector path, e.g. http://jaeger-collector:9411/api/v2/spans")
    return problems


def valid_host(host: str) -> bool:
    """An IP address or a DNS name (what Envoy can resolve for a STATIC or STRICT_DNS cluster)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(host))


def _validate_datadog(backend: mesh_pb2.TracingBackend, path: str) -> list[Violation]:
    typed, problems = _typed_conf(backend, path)
    if not isinstance(typed, mesh_pb2.DatadogTracingBackendConfig):
        return problems
    violations: list[Violation] = []
    if not typed.address:
        violations.append(Violation(field(path, "address"), "cannot be empty"))
    elif not valid_host(typed.address):
        violations.append(Violation(field(path, "address"), "has to be a valid IP address or domain name"))
    if not 1 <= typed.port <= 65535:
        violations.append(Violation(field(path, "port"), "port must be in the range [1, 65535]"))
    return violations


def backend_names(mesh: mesh_pb2.Mesh) -> list[str]:
    return [b.name for b in mesh.tracing.backends]
