"""Policy plugins, one folder per policy kind (Kuma's `pkg/plugins/policies/<name>/`).

Each folder holds `api.py` (the kind descriptor, schema rules, validation: the resource layer), its
matching, and `plugin.py` (the `PolicyPlugin`: which proxies a policy selects, the effective configuration
it resolves per proxy with the reasons when there is none, and what that contributes to generation).
`plugin.py` in this folder is the seam; `plugins.py` lists the plugins and combines their decisions.
This package file imports nothing, so a kind's `api.py` can be imported by the resource registry without
pulling in generation code.
"""
