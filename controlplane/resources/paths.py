"""Field paths in Kuma's notation (`tracing.backends[0].name`, `selectors[0].match["kuma.io/service"]`).

Validators build paths with these helpers instead of formatting strings inline, so every message in the API
uses the same notation as Kuma's validators (`pkg/core/validators/types.go`, `RootedAt(...).Index(i)`).
"""

from __future__ import annotations

import json


def field(path: str, name: str) -> str:
    """`path.name`, or just `name` at the root."""
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    """Map entry: `match["kuma.io/service"]` (JSON-quoted like Kuma's `Key()`)."""
    return f"{path}[{json.dumps(k)}]"
