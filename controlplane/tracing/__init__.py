"""Tracing backends behind one seam (`backend.py`): one module per backend type, a registry keyed by `type`,
and the HCM tracing block built from a resolved backend (`block.py`). Pure: data in, protobuf out."""
