"""Running a sidecar: locate and supervise Envoy, register its Dataplane (`controlplane dataplane run`)."""
