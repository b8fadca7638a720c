"""The committed generated modules match protos/ (a changed .proto cannot be forgotten)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_generated_modules_are_up_to_date(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "protos" / "generate.py"), str(tmp_path)], check=True)
    committed = ROOT / "controlplane" / "resources" / "generated"
    for fresh in sorted(tmp_path.glob("*_pb2.py*")):
        assert (committed / fresh.name).read_text() == fresh.read_text(), (
            f"{fresh.name} is stale: run `python protos/generate.py`"
        )
