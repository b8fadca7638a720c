"""Envoy configuration for one proxy: pure functions from (MeshContext, Proxy) to a ResourceSet.

`generators.py` runs the generators in order (`generate_snapshot`); one module per concern (inbound,
outbound, tracing) and the message builders they share (clusters, listeners, hcm, endpoints, names). This
package file imports nothing, so the builders can be imported without pulling in the generators.
"""
