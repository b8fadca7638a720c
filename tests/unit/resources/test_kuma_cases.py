"""Kuma's own validator test tables (release-2.11, files under kuma_cases/), one pytest case per entry.

Each entry goes through our YAML loader and codec as `apply` would send it, and the whole ordered violation
list is compared with Kuma's. An entry marked `difference` is one where this control plane deliberately
reports something else (README, "Differences from Kuma"): it must report exactly that, and it must still
differ from Kuma, so a difference that disappears (or changes) is noticed and the marker updated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.errors import ValidationError
from controlplane.resources.codec import decode_resource
from controlplane.resources.yaml_loader import load_documents

CASES_DIR = Path(__file__).parent / "kuma_cases"
KUMA_REPOSITORY = "kumahq/kuma"
KUMA_COMMIT = "3431ee0e00342a4c72a6106cae3777e71742eb5f"  # release-2.11


@dataclass(frozen=True)
class KumaCase:
    file: str
    name: str
    document: dict[str, Any]
    kuma: list[dict[str, str]]
    ours: list[dict[str, str]] | None
    reason: str | None

    @property
    def id(self) -> str:
        return f"{self.file}: {self.name}"


def _load(path: Path) -> list[KumaCase]:
    data = yaml.safe_load(path.read_text())
    source = data["source"]
    assert (source["repository"], source["commit"]) == (KUMA_REPOSITORY, KUMA_COMMIT)
    assert source["path"].startswith("pkg/core/resources/apis/mesh/") and source["path"].endswith("_test.go")
    cases = []
    for entry in data["cases"]:
        documents = load_documents(entry["input"])
        assert len(documents) <= 1, entry["name"]
        document = {**data["envelope"], **(documents[0] if documents else {})}
        difference = entry.get("difference")
        cases.append(KumaCase(
            path.stem, entry["name"], document, entry["violations"],
            difference["violations"] if difference else None, difference["reason"] if difference else None,
        ))
    return cases


CASES = [case for path in sorted(CASES_DIR.glob("*.yaml")) for case in _load(path)]


def _violations(document: dict[str, Any]) -> list[dict[str, str]]:
    try:
        decode_resource(document)
    except ValidationError as exc:
        return [{"field": v.field, "message": v.message} for v in exc.violations]
    return []


def test_every_table_is_ported() -> None:
    counts = {name: sum(1 for c in CASES if c.file == name) for name in ("mesh", "traffic_trace", "dataplane")}
    assert counts == {"mesh": 11, "traffic_trace": 7, "dataplane": 60}  # Kuma's Entry() count (mesh: tracing ones)


@pytest.mark.parametrize("case", CASES, ids=[f"{i:02d} {c.id}" for i, c in enumerate(CASES)])
def test_kuma_validator_case(case: KumaCase) -> None:
    actual = _violations(case.document)
    if case.ours is None:
        assert actual == case.kuma
        return
    assert case.reason, "a difference from Kuma needs its reason"
    assert actual == case.ours
    assert actual != case.kuma, "no longer differs from Kuma: drop the `difference` marker"
