"""Tag and selector rules shared by TrafficTrace selectors and Dataplane inbound tags.

Messages are Kuma's (`pkg/core/resources/apis/mesh/validators.go`, reference kuma-tracing.md §2.2).
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
_TAG_NAME: Final = re.compile(r"^[a-zA-Z0-9.\-_:/]*\Z")
_SELECTOR_VALUE: Final = re.compile(r"^([a-zA-Z0-9.\-_:/]*|\*)\Z")
_TAG_VALUE: Final = re.compile(r"^[a-zA-Z0-9.\-_:/]*\Z")


def validate_selector(match: Mapping[str, str], path: str) -> list[Violation]:
    """A selector needs at least one tag; values may be `*`. Keys are checked in sorted order like Kuma."""
    if not match:
        return [Violation(path, "must have at least one tag")]
    return _validate_tags(match, path, _SELECTOR_VALUE, ' or be "*"')


def validate_tags(tags: Mapping[str, str], path: str) -> list[Violation]:
    """Dataplane tags: same character rules as selectors, but `*` is not a value."""
    return _validate_tags(tags, path, _TAG_VALUE, "")


def _validate_tags(tags: Mapping[str, str], path: str, value_re: re.Pattern[str], star: str) -> list[Violation]:
    violations: list[Violation] = []
    for name in sorted(tags):
        value = tags[name]
        entry = key(path, name)
        if not name:
            violations.append(Violation(path, "tag name must be non-empty"))
        elif not _TAG_NAME.match(name):
            violations.append(
                Violation(entry, "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores")
            )
        if not value:
            violations.append(Violation(entry, "tag value must be non-empty"))
        elif not value_re.match(value):
            violations.append(
                Violation(
                    entry,
                    "tag value must consist of alphanumeric characters, dots, dashes, slashes and underscores" + star,
                )
            )
    return violations
