"""Running a sidecar: its Envoy bootstrap (`bootstrap.py`), locating and supervising Envoy, registering its
Dataplane (`controlplane dataplane run`)."""
