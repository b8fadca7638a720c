"""Support for end-to-end tests: a real Envoy, fake trace collectors, an upstream app, waiting helpers."""
