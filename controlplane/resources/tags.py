"""Tag and selector rules shared by TrafficTrace selectors and Dataplane tags.

Messages, character sets and order are Kuma's (`pkg/core/resources/apis/mesh/validators.go`,
`validateTagKeyValues`): keys in sorted order, for each the name checks then the value checks, and a
missing `kuma.io/service` after all of them. Selector values may hold `/` and be `*`; Dataplane tag values
may hold neither (Kuma's `tagValueCharacterSet`), because a tag value becomes part of Envoy names and stats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from controlplane.errors import Violation
from controlplane.resources.paths import key

SERVICE_TAG: Final = "kuma.io/service"
PROTOCOL_TAG: Final = "kuma.io/protocol"
ZONE_TAG: Final = "kuma.io/zone"
PROTOCOLS: Final = ("grpc", "http", "http2", "kafka", "tcp")
"""The protocols Kuma's message lists (`SupportedProtocols`)."""
KNOWN_PROTOCOLS: Final = frozenset({*PROTOCOLS, "tls", "mysql"})
"""What Kuma's `ParseProtocol` knows (case-insensitively): `tls` and `mysql` pass validation too, though its
message does not list them; both are plain TCP here, as in Kuma's generators."""
_TAG_NAME: Final = re.compile(r"^[a-zA-Z0-9.\-_:/]*\Z")
_SELECTOR_VALUE: Final = re.compile(r"^([a-zA-Z0-9.\-_:/]*|\*)\Z")
_TAG_VALUE: Final = re.compile(r"^[a-zA-Z0-9.\-_:]*\Z")
_NAME_MESSAGE: Final = "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores"
_SELECTOR_VALUE_MESSAGE: Final = (
    'tag value must consist of alphanumeric characters, dots, dashes, slashes and underscores or be "*"'
)
_TAG_VALUE_MESSAGE: Final = "tag value must consist of alphanumeric characters, dots, dashes and underscores"


def validate_selector(match: Mapping[str, str], path: str) -> list[Violation]:
    """A selector needs at least one tag; values may hold `/` or be `*` (Kuma's `ValidateSelector`)."""
    if not match:
        return [Violation(path, "must have at least one tag")]
    return _validate_tags(match, path, _SELECTOR_VALUE, _SELECTOR_VALUE_MESSAGE)


def validate_tags(tags: Mapping[str, str], path: str, *, require_service: bool = False) -> list[Violation]:
    """Dataplane tags (Kuma's `ValidateTags`): no `/` and no `*` in values; with `require_service`, a
    missing `kuma.io/service` is reported last, at the map itself."""
    violations = _validate_tags(tags, path, _TAG_VALUE, _TAG_VALUE_MESSAGE)
    if require_service and SERVICE_TAG not in tags:
        violations.append(Violation(path, f'mandatory tag "{SERVICE_TAG}" is missing'))
    return violations


def validate_protocol(tags: Mapping[str, str], path: str) -> list[Violation]:
    """An inbound's `kuma.io/protocol`, when present, must be one Kuma knows (checked before the tags)."""
    protocol = tags.get(PROTOCOL_TAG)
    if protocol is None or protocol.lower() in KNOWN_PROTOCOLS:
        return []
    message = f'tag "{PROTOCOL_TAG}" has an invalid value "{protocol}". Allowed values: {", ".join(PROTOCOLS)}'
    return [Violation(key(path, PROTOCOL_TAG), message)]


def _validate_tags(tags: Mapping[str, str], path: str, value_re: re.Pattern[str], value_message: str) -> list[Violation]:
    violations: list[Violation] = []
    for name in sorted(tags):
        value = tags[name]
        entry = key(path, name)
        if not name:
            violations.append(Violation(path, "tag name must be non-empty"))
        elif not _TAG_NAME.match(name):
            violations.append(Violation(entry, _NAME_MESSAGE))
        if not value:
            violations.append(Violation(entry, "tag value must be non-empty"))
        elif not value_re.match(value):
            violations.append(Violation(entry, value_message))
    return violations
