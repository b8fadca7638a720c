"""Reading an export back for `controlplane import`: any size, bounded memory, every document validated
before anything is written.

`apply`'s caps (1000 documents, 8 MiB; `apply.py`, `yaml_loader.py`) protect the API from one huge request;
a restore must take whatever `export` wrote (100k Dataplanes are ~30 MB). So the input is read once,
document by document (`yaml_loader.iter_documents`): each is decoded and validated exactly as `apply` does,
its `creationTime`/`modificationTime` are checked, and the valid resource goes, as protobuf bytes, into a
temporary spool file for its kind. Memory holds one document, the mesh names, and at most `MAX_REPORTED`
error messages. Only when every document passed does the caller write, reading the spool back kind by kind
(meshes first, whatever order the input had).
Alternatives rejected: parsing the YAML a second time to write (stdin cannot be re-read, and parsing is
most of the cost); keeping the decoded resources in memory (unbounded); writing while reading (a bad
document at the end would leave the store half restored).

Must not: write to a store or the API (that is `transfer.py`).
"""

from __future__ import annotations

import json
import struct
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Final

import click

from controlplane.errors import ValidationError
from controlplane.resources.codec import decode_resource
from controlplane.resources.kind import Kind
from controlplane.resources.model import Resource, ResourceKey
from controlplane.resources.registry import KINDS
from controlplane.resources.yaml_loader import iter_documents

KIND_ORDER: Final = KINDS.all()  # meshes first, dataplanes last: an order `apply` accepts
MAX_REPORTED: Final = 20
_HEADER: Final = struct.Struct(">IIIIII")  # lengths: mesh, name, creationTime, modificationTime, labels, spec


@dataclass(frozen=True, slots=True)
class Restored:
    """One validated resource and the times the export recorded (kept by `import --store`)."""

    resource: Resource
    created: datetime | None
    modified: datetime | None


@dataclass
class Spool:
    """Validated resources in one temporary file per kind (deleted when closed); iterates meshes first."""

    files: dict[Kind, IO[bytes]]
    count: int = 0
    meshes: set[str] = field(default_factory=set)
    """Meshes the input defines."""
    referenced: set[str] = field(default_factory=set)
    """Meshes the input's TrafficTraces and Dataplanes live in."""

    def add(self, item: Restored) -> None:
        key = item.resource.key
        parts = (key.mesh.encode(), key.name.encode(), _stamp(item.created), _stamp(item.modified),
                 json.dumps(dict(item.resource.labels)).encode(),
                 item.resource.spec.SerializeToString(deterministic=True))
        out = self.files[key.kind]
        out.write(_HEADER.pack(*(len(part) for part in parts)))
        out.writelines(parts)
        self.count += 1
        if key.kind.mesh_scoped:
            self.referenced.add(key.mesh)
        else:
            self.meshes.add(key.name)

    def __iter__(self) -> Iterator[Restored]:
        for kind in KIND_ORDER:
            spool = self.files[kind]
            spool.seek(0)
            while header := spool.read(_HEADER.size):
                mesh, name, created, modified, labels, spec = (spool.read(n) for n in _HEADER.unpack(header))
                message = kind.new_spec()
                message.ParseFromString(spec)
                resource = Resource(ResourceKey(kind, mesh.decode(), name.decode()), message,
                                    labels=json.loads(labels))
                yield Restored(resource, _unstamp(created), _unstamp(modified))

    def missing_meshes(self) -> set[str]:
        """Meshes the input's resources need but does not define: they must already exist in the target."""
        return self.referenced - self.meshes


def read_export(path: str, stack: ExitStack) -> Spool:
    """Validate every document of `path` (`-` = stdin) into a Spool closed with `stack`; a ClickException
    listing what is wrong (nothing written anywhere) otherwise."""
    spool = Spool({kind: stack.enter_context(tempfile.TemporaryFile()) for kind in KIND_ORDER})  # noqa: SIM115
    errors: list[str] = []
    invalid = 0
    try:
        with _open_input(path) as stream:
            for index, document in enumerate(iter_documents(stream)):
                try:
                    spool.add(_restored(index, document))
                except ValidationError as exc:
                    invalid += 1
                    if len(errors) < MAX_REPORTED:
                        errors.append(f"{_label(document, index)} is not valid:\n"
                                      + "\n".join(f"  {v}" for v in exc.violations))
    except ValidationError as exc:  # YAML syntax or limits: the documents after it cannot be read
        errors.append("\n".join(str(v) for v in exc.violations))
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if invalid > len(errors):
        errors.append(f"... and {invalid - len(errors)} more invalid documents")
    if errors:
        raise click.ClickException("\n".join(errors) + "\nnothing was imported")
    if spool.count == 0:
        raise click.ClickException("no resource(s) passed to import")
    return spool


def _open_input(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    return open(path, encoding="utf-8")


def _restored(index: int, document: object) -> Restored:
    resource = decode_resource(document)
    body = document if isinstance(document, dict) else {}
    return Restored(resource, _time(index, "creationTime", body.get("creationTime")),
                    _time(index, "modificationTime", body.get("modificationTime")))


def _time(index: int, name: str, value: object) -> datetime | None:
    """An RFC 3339 time with a zone, or a ClickException naming the document (export always writes one)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise click.ClickException(f"document {index + 1}: {name}: must be an RFC 3339 time with a zone, "
                                   f"e.g. 2024-01-02T03:04:05Z, got {value!r}")
    return parsed


def _label(document: object, index: int) -> str:
    if isinstance(document, dict) and document.get("type") and document.get("name"):
        return f'document {index + 1} ({document["type"]} "{document["name"]}")'
    return f"document {index + 1}"


def _stamp(value: datetime | None) -> bytes:
    return value.isoformat().encode() if value is not None else b""


def _unstamp(raw: bytes) -> datetime | None:
    return datetime.fromisoformat(raw.decode()) if raw else None
