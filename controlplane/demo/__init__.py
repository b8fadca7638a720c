"""`controlplane demo`: control plane, demo apps, real Envoy sidecars and a span receiver in one command."""
