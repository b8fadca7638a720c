"""Are spans flowing? What every Envoy's own counters say about its tracing, read and judged (pure).

`stats.py` says which Envoy stats the bootstrap keeps and reads one stats-sink report into `Counts`;
`flow.py` keeps a proxy's recent reports (bounded) and turns them into deltas, rates and totals;
`verdict.py` judges a proxy (flowing, collector unreachable, ...) from its policy decision and its flow.
The stats sink that feeds them (gRPC) is `xds/stats_sink.py`; the registry of flows is `xds/span_flows.py`.
"""
