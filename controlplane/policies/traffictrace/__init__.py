"""TrafficTrace: Kuma's legacy tracing policy (reference kuma-tracing.md §2)."""
