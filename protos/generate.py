"""Regenerate controlplane/resources/generated/ from protos/*.proto.

The generated modules are committed so that installing the package needs no protoc; the test
tests/unit/resources/test_generated.py regenerates into a temporary directory and fails if the committed
files differ, so a changed .proto cannot be forgotten.

Usage: python protos/generate.py [OUTPUT_DIR]
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
DEFAULT_OUT = ROOT / "controlplane" / "resources" / "generated"


def generate(out_dir: Path) -> None:
    """Run protoc (bundled with grpcio-tools) for every .proto file into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = str(resources.files("grpc_tools") / "_proto")
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.glob("*.proto"))
    code = protoc.main(
        ["protoc", f"-I{PROTO_DIR}", f"-I{well_known}", f"--python_out={out_dir}", f"--pyi_out={out_dir}", *protos]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)
