"""MeshTrace: Kuma's current tracing policy (reference kuma-meshtrace.md)."""
