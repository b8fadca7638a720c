"""Kuma-compatible Envoy xDS control plane with distributed tracing (Mesh tracing backends + TrafficTrace)."""

__version__ = "0.1.0"
