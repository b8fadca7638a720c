"""End-to-end tests with real Envoy processes (marker ``e2e``)."""
